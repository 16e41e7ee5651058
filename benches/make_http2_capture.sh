#!/usr/bin/env bash
# Records a capture of real cleartext HTTP/2 traffic for the HTTP/2
# benchmark: nginx serves a generated static site over h2c (prior
# knowledge) on 127.0.0.1:8080 and h2load requests it over 16
# connections, 16 concurrent streams each, until about SIZE_MB were sent.
#
#   benches/make_http2_capture.sh OUT.pcap [SIZE_MB]      (default 300 MB)
#
# Inside a private network namespace (unshare -n); loopback gets MTU 1500
# and no offloads, so frames look like Ethernet's. tcpdump records it.
# Needs root, nginx, h2load (Debian: nghttp2-client), tcpdump, ethtool.
set -euo pipefail
out=$(realpath -m "${1:?usage: make_http2_capture.sh OUT.pcap [SIZE_MB]}")
size_mb=${2:-300}
. "$(dirname "$0")/loopback.sh"
enter_netns "$0" "$@"
work=$(mktemp -d /tmp/trawl-bench-h2.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; nginx -c "$work/nginx.conf" -s stop 2>/dev/null || true; rm -rf "$work"' EXIT
ethernet_loopback
site=$work/site; mkdir -p "$site/json" "$site/txt"
python3 - "$site" "$work/uris" <<'PY'
import json, random, sys
random.seed(5)
root, uris = sys.argv[1], sys.argv[2]
words = "alpha beta gamma delta checkout cart order payment user session token invoice".split()
paths = []
for i in range(100):
    items = [{"id": j, "sku": f"SKU-{random.randint(1000,9999)}", "qty": random.randint(1, 5)} for j in range(random.randint(5, 40))]
    open(f"{root}/json/j{i}.json", "w").write(json.dumps({"order": i, "items": items}))
    paths.append(f"http://127.0.0.1:8080/json/j{i}.json")
for i in range(100):
    n = random.randint(200, 6000)
    open(f"{root}/txt/t{i}.txt", "w").write(" ".join(random.choice(words) for _ in range(n // 6))[:n])
    paths.append(f"http://127.0.0.1:8080/txt/t{i}.txt?v={random.randint(1, 99)}")
random.shuffle(paths)
open(uris, "w").write("\n".join(paths) + "\n")
PY
chmod -R a+rX "$work"
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  types { text/plain txt; application/json json; }
  keepalive_requests 1000000;
  client_body_temp_path $work/body; proxy_temp_path $work/proxy; fastcgi_temp_path $work/fcgi; uwsgi_temp_path $work/uwsgi; scgi_temp_path $work/scgi;
  server {
    listen 127.0.0.1:8080 http2;
    root $site;
  }
}
CONF
nginx -c "$work/nginx.conf"
requests=$(( size_mb * 1000000 / 3200 / 256 * 256 ))
round() { h2load -n "$requests" -c 16 -m 16 -i "$work/uris" >/dev/null; }
record_until "$out" 0 'tcp port 8080' round
