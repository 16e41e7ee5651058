#!/usr/bin/env bash
# Records testdata/scenarios/udp-fragments.pcap: real IP fragmentation. A
# Python UDP echo server and client exchange datagrams larger than the
# loopback MTU (1500) inside a private network namespace (unshare -n), so
# the kernel fragments them; a curl/python HTTP exchange on the side gives
# an unfragmented TCP flow. tcpdump records loopback. Needs root, python3,
# tcpdump.
#
#   testdata/scenarios/make_udp_fragments.sh testdata/scenarios/udp-fragments.pcap
set -euo pipefail
out=$(realpath -m "${1:?usage: make_udp_fragments.sh OUT.pcap}")
if [ -z "${TRAWL_IN_NETNS:-}" ]; then
  export TRAWL_IN_NETNS=1
  exec unshare -n -- "$0" "$@"
fi
work=$(mktemp -d /tmp/trawl-frag.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
ip link set lo up
ip link set lo mtu 1500
tcpdump -i lo -s 0 -w "$out" -U 2>/dev/null &
sleep 1
python3 - <<'PY'
import socket, threading, http.server

# UDP echo on 127.0.0.2:7777: three requests of 600, 4000 and 9000 bytes;
# the two large ones and their echoes are fragmented.
srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
srv.bind(("127.0.0.2", 7777))
def echo():
    for _ in range(3):
        data, peer = srv.recvfrom(65535)
        srv.sendto(data, peer)
t = threading.Thread(target=echo); t.start()
cli = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
cli.bind(("127.0.0.1", 40001))
for n in (600, 4000, 9000):
    cli.sendto(bytes([n % 251]) * n, ("127.0.0.2", 7777))
    cli.recvfrom(65535)
t.join()

# One small HTTP exchange over TCP.
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\n"
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
hs = http.server.HTTPServer(("127.0.0.2", 8080), H)
threading.Thread(target=hs.handle_request).start()
import urllib.request
urllib.request.urlopen("http://127.0.0.2:8080/health").read()
PY
sleep 1
kill %1
wait 2>/dev/null || true
