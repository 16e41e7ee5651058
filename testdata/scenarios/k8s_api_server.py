#!/usr/bin/env python3
"""A Kubernetes API server stand-in for the capture agent's watcher test:
it answers list and watch requests the way the API server does, from a
recording of the scenario cluster (testdata/scenarios/k8s/kubectl: the
cluster before and after a Job pod is replaced), since no API server runs
on these machines.

What it plays, per kind (pods, services, endpointslices, nodes,
replicasets, jobs, all namespaces):
- list: a <Kind>List with metadata.resourceVersion and items without
  kind/apiVersion (as the API server sends them);
- watch from that resourceVersion: chunked `{"type": ..., "object": ...}`
  lines, then BOOKMARKs until timeoutSeconds or the client leaves.
For pods, the first watch carries the recorded changes (DELETED the Job
pod, ADDED the new pod), then an ERROR 410 Gone ("too old resource
version"), so the client must list again; the second list is the cluster
after the changes.

  k8s_api_server.py KUBECTL_DIR PORT_FILE LOG_FILE

Listens on 127.0.0.1 (an ephemeral port, written to PORT_FILE); each
request line goes to LOG_FILE.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

src, port_file, log_file = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
before, after = (json.loads(p.read_text())["items"] for p in sorted(src.glob("k8s-*.json")))

KINDS = {
    "/api/v1/pods": ("Pod", "v1"),
    "/api/v1/services": ("Service", "v1"),
    "/api/v1/nodes": ("Node", "v1"),
    "/apis/discovery.k8s.io/v1/endpointslices": ("EndpointSlice", "discovery.k8s.io/v1"),
    "/apis/apps/v1/replicasets": ("ReplicaSet", "apps/v1"),
    "/apis/batch/v1/jobs": ("Job", "batch/v1"),
}


def key(o):
    return (o["metadata"].get("namespace"), o["metadata"]["name"])


def of(items, kind, rv):
    out = []
    for o in items:
        if o["kind"] == kind:
            o = json.loads(json.dumps(o))
            o["metadata"]["resourceVersion"] = str(rv)
            out.append(o)
    return out


lock = threading.Lock()
pod_lists = 0
log = open(log_file, "a", buffering=1)


class Api(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send_json(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def chunk(self, obj):
        data = (json.dumps(obj) + "\n").encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_GET(self):
        global pod_lists
        u = urlparse(self.path)
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        log.write(f"GET {self.path}\n")
        if u.path not in KINDS:
            return self.send_json(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404})
        kind, api_version = KINDS[u.path]
        if q.get("watch") not in ("1", "true"):
            with lock:
                if kind == "Pod":
                    pod_lists += 1
                second = kind == "Pod" and pod_lists > 1
            rv = 200 if second else 100
            items = of(after if second else before, kind, rv)
            for o in items:
                o.pop("kind", None)
                o.pop("apiVersion", None)
            return self.send_json(200, {"kind": kind + "List", "apiVersion": api_version, "metadata": {"resourceVersion": str(rv)}, "items": items})
        self.send_response(200)
        self.send_header("Content-Type", "application/json;stream=watch")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        rv = int(q.get("resourceVersion", "0") or 0)
        try:
            if kind == "Pod" and rv == 100:
                old = {key(o): o for o in of(before, "Pod", 101)}
                new = {key(o): o for o in of(after, "Pod", 102)}
                for k in sorted(old.keys() - new.keys()):
                    self.chunk({"type": "DELETED", "object": old[k]})
                    time.sleep(0.3)
                for k in sorted(new.keys() - old.keys()):
                    self.chunk({"type": "ADDED", "object": new[k]})
                    time.sleep(0.3)
                self.chunk({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                                        "message": "too old resource version: 100 (150)", "reason": "Expired", "code": 410}})
            else:
                end = time.time() + min(float(q.get("timeoutSeconds", "290")), 290)
                while time.time() < end:
                    self.chunk({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": str(rv)}}})
                    time.sleep(1)
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
server.daemon_threads = True
port_file.write_text(str(server.server_address[1]))
server.serve_forever()
