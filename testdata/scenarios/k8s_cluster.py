"""Plays a small Kubernetes cluster with network namespaces and records it.

Run by make_k8s_cluster.sh inside a private network and mount namespace;
writes OUT/cluster.pcap, OUT/kubectl/k8s-<ms>.json (two kubectl Lists: at
the start, and after the address of the deleted Job pod went to a new
pod) and OUT/timeline/k8s-<ms>.jsonl (a snapshot, then the deletion and
the addition as watch events). See make_k8s_cluster.sh.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

OUT = sys.argv[1]
WORK = tempfile.mkdtemp(prefix="trawl-k8s-")
NODE = "node-1"
NODE_IP = "192.168.49.2"


def sh(*args):
    subprocess.run(args, check=True)


def rfc3339(ns):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + ".%06dZ" % (ns // 1000 % 1_000_000)


SERVER = r'''
import http.server, json, sys
name, bind, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
STATUS = {"/api/checkout": 201, "/charge": 402, "/api/orders/export": 200}
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def reply(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        body = json.dumps({"served_by": name, "path": self.path}).encode()
        self.send_response(STATUS.get(self.path.split("?")[0], 200))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = reply
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer((bind, port), H).serve_forever()
'''

# CoreDNS stand-in: api.partner.example is a CNAME to the partner's CDN
# name, whose A record is 203.0.113.10; AAAA has no answer; others NXDOMAIN.
DNS = r'''
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.96.0.10", 53))
def name(labels):
    return b"".join(bytes([len(l)]) + l.encode() for l in labels.split(".")) + b"\0"
while True:
    data, peer = s.recvfrom(512)
    qid, = struct.unpack(">H", data[:2])
    i, labels = 12, []
    while data[i]:
        labels.append(data[i + 1:i + 1 + data[i]].decode()); i += 1 + data[i]
    qtype, = struct.unpack(">H", data[i + 1:i + 3])
    question = data[12:i + 5]
    qname = ".".join(labels).lower()
    rcode, answers, count = 3, b"", 0
    if qname == "api.partner.example":
        rcode = 0
        if qtype == 1:
            target = name("edge.partner-cdn.example")
            answers = b"\xc0\x0c" + struct.pack(">HHIH", 5, 1, 30, len(target)) + target
            answers += struct.pack(">H", 0xc000 | (12 + len(question) + 12)) + struct.pack(">HHIH", 1, 1, 30, 4) + socket.inet_aton("203.0.113.10")
            count = 2
    s.sendto(struct.pack(">HHHHHH", qid, 0x8180 | rcode, 1, count, 0, 0) + question + answers, peer)
'''

open(f"{WORK}/server.py", "w").write(SERVER)
open(f"{WORK}/dns.py", "w").write(DNS)

os.makedirs("/run/netns", exist_ok=True)
sh("mount", "-t", "tmpfs", "tmpfs", "/run/netns")
open(f"{WORK}/resolv.conf", "w").write("nameserver 10.96.0.10\noptions timeout:2 attempts:1\n")
sh("mount", "--bind", f"{WORK}/resolv.conf", "/etc/resolv.conf")
sh("ip", "link", "set", "lo", "up")
sh("ip", "link", "add", "br0", "type", "bridge")
sh("ip", "link", "set", "br0", "up")
sh("ip", "addr", "add", "10.244.0.1/16", "dev", "br0")
sh("ip", "addr", "add", f"{NODE_IP}/24", "dev", "br0")
open("/proc/sys/net/ipv4/ip_forward", "w").write("1\n")

# "internet": api.partner.example, reached through the node.
sh("ip", "netns", "add", "internet")
sh("ip", "link", "add", "vnet", "type", "veth", "peer", "name", "eth0", "netns", "internet")
sh("ip", "addr", "add", "10.255.0.1/30", "dev", "vnet")
sh("ip", "link", "set", "vnet", "up")
for a in ("10.255.0.2/30", "203.0.113.10/32"):
    sh("ip", "-n", "internet", "addr", "add", a, "dev", "eth0")
sh("ip", "-n", "internet", "link", "set", "eth0", "up")
sh("ip", "-n", "internet", "link", "set", "lo", "up")
sh("ip", "-n", "internet", "route", "add", "default", "via", "10.255.0.1")
sh("ip", "route", "add", "203.0.113.10/32", "via", "10.255.0.2")

# ClusterIPs live on their backend pod (the view before DNAT).
CLUSTER_IPS = {"10.96.0.10": "10.244.0.53", "10.96.0.20": "10.244.1.11", "10.96.0.30": "10.244.2.20"}
veths = [0]
pods = {}


def pod(ns, name, ip, labels, owner, ports=(), extra_ips=()):
    netns = name[:15]
    veths[0] += 1
    v = f"v{veths[0]}"
    sh("ip", "netns", "add", netns)
    sh("ip", "link", "add", v, "type", "veth", "peer", "name", "eth0", "netns", netns)
    sh("ip", "link", "set", v, "master", "br0", "up")
    sh("ip", "-n", netns, "addr", "add", f"{ip}/16", "dev", "eth0")
    for e in extra_ips:
        sh("ip", "-n", netns, "addr", "add", f"{e}/32", "dev", "eth0")
    sh("ip", "-n", netns, "link", "set", "eth0", "up")
    sh("ip", "-n", netns, "link", "set", "lo", "up")
    sh("ip", "-n", netns, "route", "add", "default", "via", "10.244.0.1")
    for vip, backend in CLUSTER_IPS.items():
        if backend != ip:
            sh("ip", "-n", netns, "route", "add", vip, "via", backend)
    pods[name] = dict(ns=ns, name=name, ip=ip, labels=labels, owner=owner, ports=list(ports), created=time.time_ns(), netns=netns, host=False)
    return netns


procs = []


def serve(netns, name, bind, port):
    cmd = ["python3", f"{WORK}/server.py", name, bind, str(port)]
    if netns:
        cmd = ["ip", "netns", "exec", netns] + cmd
    procs.append(subprocess.Popen(cmd))


def curl(netns, url, *extra):
    sh("ip", "netns", "exec", netns, "curl", "-sS", "-o", "/dev/null", "--max-time", "5", *extra, url)


frontend = pod("shop", "frontend-6f7d9c8b5-k2x4p", "10.244.1.10", {"app": "frontend", "pod-template-hash": "6f7d9c8b5"}, ("ReplicaSet", "frontend-6f7d9c8b5"))
checkout = pod(
    "shop", "checkout-5b8d4f7c6-q9w2e", "10.244.1.11", {"app": "checkout", "pod-template-hash": "5b8d4f7c6"}, ("ReplicaSet", "checkout-5b8d4f7c6"), [8080], ["10.96.0.20"]
)
payments = pod("payments", "payments-0", "10.244.2.20", {"app": "payments"}, ("StatefulSet", "payments"), [8080], ["10.96.0.30"])
report = pod("batch", "report-29385120-7xk2p", "10.244.3.30", {"app": "report", "job-name": "report-29385120"}, ("Job", "report-29385120"))
prometheus = pod("monitoring", "prometheus-0", "10.244.4.40", {"app": "prometheus"}, ("StatefulSet", "prometheus"), [9090])
coredns = pod(
    "kube-system", "coredns-76f75df574-abcde", "10.244.0.53", {"k8s-app": "kube-dns", "pod-template-hash": "76f75df574"}, ("ReplicaSet", "coredns-76f75df574"), [53], ["10.96.0.10"]
)
pods["node-exporter-x7k9d"] = dict(
    ns="monitoring", name="node-exporter-x7k9d", ip=NODE_IP, labels={"app": "node-exporter"}, owner=("DaemonSet", "node-exporter"), ports=[9100], created=time.time_ns(), host=True
)

SERVICES = [
    ("shop", "checkout", "10.96.0.20", {"app": "checkout"}, 8080),
    ("shop", "frontend", "10.96.0.21", {"app": "frontend"}, 80),
    ("payments", "payments", "10.96.0.30", {"app": "payments"}, 8080),
    ("payments", "ledger", "10.96.0.31", {"app": "ledger"}, 8080),
    ("kube-system", "kube-dns", "10.96.0.10", {"k8s-app": "kube-dns"}, 53),
    ("monitoring", "prometheus", "10.96.0.40", {"app": "prometheus"}, 9090),
    ("monitoring", "node-exporter", "None", {"app": "node-exporter"}, 9100),
]
OWNERS = [("ReplicaSet", "shop", "checkout-5b8d4f7c6", "Deployment", "checkout"), ("Job", "batch", "report-29385120", "CronJob", "report")]


def meta(ns, name, created, labels=None, owner=None):
    m = {"name": name, "uid": f"uid-{name}", "creationTimestamp": rfc3339(created)}
    if ns:
        m["namespace"] = ns
    if labels:
        m["labels"] = labels
    if owner:
        m["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "uid": f"uid-{owner[1]}", "controller": True}]
    return m


def pod_object(p):
    ports = [{"containerPort": port, "protocol": "TCP", **({"hostPort": port} if p["host"] else {})} for port in p["ports"]]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(p["ns"], p["name"], p["created"], p["labels"], p["owner"]) | {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "trawl.dev/scenario": "k8s-cluster"}},
        "spec": {"nodeName": NODE, "hostNetwork": p["host"], "containers": [{"name": "main", "image": "python:3", "ports": ports}]},
        "status": {"phase": "Running", "hostIP": NODE_IP, "podIP": p["ip"], "podIPs": [{"ip": p["ip"]}], "startTime": rfc3339(p["created"])},
    }


def objects(t0):
    items = [pod_object(p) for p in pods.values()]
    for ns, name, vip, selector, port in SERVICES:
        spec = {"type": "ClusterIP", "clusterIP": vip, "clusterIPs": [vip], "selector": selector, "ports": [{"port": port, "protocol": "TCP", "targetPort": port}]}
        items.append({"apiVersion": "v1", "kind": "Service", "metadata": meta(ns, name, t0), "spec": spec, "status": {"loadBalancer": {}}})
        backends = [p for p in pods.values() if p["ns"] == ns and all(p["labels"].get(k) == v for k, v in selector.items())]
        items.append(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": meta(ns, f"{name}-8x2vq", t0, {"kubernetes.io/service-name": name}),
                "addressType": "IPv4",
                "endpoints": [
                    {"addresses": [p["ip"]], "conditions": {"ready": True}, "nodeName": NODE, "targetRef": {"kind": "Pod", "name": p["name"], "namespace": ns}} for p in backends
                ],
                "ports": [{"port": port, "protocol": "TCP"}],
            }
        )
    for kind, ns, name, okind, oname in OWNERS:
        api = "apps/v1" if kind == "ReplicaSet" else "batch/v1"
        items.append({"apiVersion": api, "kind": kind, "metadata": meta(ns, name, t0, None, (okind, oname)), "spec": {}})
    items.append({"apiVersion": "v1", "kind": "Node", "metadata": meta("", NODE, t0), "status": {"addresses": [{"type": "InternalIP", "address": NODE_IP}, {"type": "Hostname", "address": NODE}]}})
    items.append({"apiVersion": "v1", "kind": "Namespace", "metadata": meta("", "shop", t0)})
    return items


def kubectl_list(t):
    os.makedirs(f"{OUT}/kubectl", exist_ok=True)
    doc = {"apiVersion": "v1", "kind": "List", "items": objects(T0), "metadata": {"resourceVersion": ""}}
    with open(f"{OUT}/kubectl/k8s-{t // 1_000_000}.json", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


timeline = []
T0 = time.time_ns()

sh("sh", "-c", "rm -f " + f"{OUT}/kubectl/*.json {OUT}/timeline/*.jsonl")
tcpdump = subprocess.Popen(["tcpdump", "-i", "br0", "-s", "0", "-U", "-w", f"{OUT}/cluster.pcap"], stderr=subprocess.DEVNULL)
serve(checkout, "checkout", "0.0.0.0", 8080)
serve(payments, "payments", "0.0.0.0", 8080)
serve(None, "node-exporter", NODE_IP, 9100)
serve(None, "kubelet", NODE_IP, 10250)
procs.append(subprocess.Popen(["ip", "netns", "exec", "internet", "python3", f"{WORK}/server.py", "partner-api", "203.0.113.10", "80"]))
procs.append(subprocess.Popen(["ip", "netns", "exec", coredns, "python3", f"{WORK}/dns.py"]))
time.sleep(1.5)

T1 = time.time_ns()
kubectl_list(T1)
timeline.append({"time": rfc3339(T1), "type": "snapshot", "objects": objects(T0)})

# Phase 1.
curl(frontend, "http://10.244.1.11:8080/api/cart")
curl(frontend, "http://10.244.1.11:8080/api/checkout", "-X", "POST", "-H", "Content-Type: application/json", "-d", '{"cart":"c-1"}')
curl(checkout, "http://10.96.0.30:8080/charge", "-X", "POST", "-d", "amount=999")
curl(report, "http://10.244.1.11:8080/api/orders/export")
curl(prometheus, f"http://{NODE_IP}:9100/metrics")
curl(checkout, f"http://{NODE_IP}:10250/healthz")
curl(payments, "http://api.partner.example/v1/fx")
time.sleep(0.5)

# The Job's pod is deleted; a new pod of another workload takes its address.
deleted = pod_object(pods["report-29385120-7xk2p"])
sh("ip", "netns", "del", report)
del pods["report-29385120-7xk2p"]
T_DEL = time.time_ns()
timeline.append({"time": rfc3339(T_DEL), "type": "DELETED", "object": deleted})
time.sleep(0.5)
ledger = pod("payments", "ledger-7c6b5d9f8-m4n8r", "10.244.3.30", {"app": "ledger", "pod-template-hash": "7c6b5d9f8"}, ("ReplicaSet", "ledger-7c6b5d9f8"), [8080])
timeline.append({"time": rfc3339(pods["ledger-7c6b5d9f8-m4n8r"]["created"]), "type": "ADDED", "object": pod_object(pods["ledger-7c6b5d9f8-m4n8r"])})
time.sleep(0.2)
T2 = time.time_ns()
kubectl_list(T2)
time.sleep(0.3)

# Phase 2.
curl(ledger, "http://10.244.2.20:8080/ledger/balance")
curl(frontend, "http://10.244.1.11:8080/api/cart")
time.sleep(1)
tcpdump.terminate()
tcpdump.wait()
for p in procs:
    p.kill()

os.makedirs(f"{OUT}/timeline", exist_ok=True)
with open(f"{OUT}/timeline/k8s-{T1 // 1_000_000}.jsonl", "w") as f:
    for r in timeline:
        f.write(json.dumps(r) + "\n")
print(f"recorded {OUT}/cluster.pcap; sidecars at {T1 // 1_000_000} and {T2 // 1_000_000}")
