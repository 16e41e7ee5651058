#!/usr/bin/env bash
# Records a capture of real HTTP/1.x traffic for the analyzer benchmark.
#
#   benches/make_http_capture.sh OUT.pcap [SIZE_MB]      (default 1024 MB)
#
# Everything runs inside a private network namespace (unshare -n): nginx
# serves a generated static site on 127.0.0.1:8080, wrk and curl load it,
# and tcpdump records loopback. No packet leaves the namespace.
# Loopback gets MTU 1500 and no offloads, so frames look like Ethernet's.
# Needs root, nginx, wrk, curl, tcpdump, ethtool (Debian packages).
set -euo pipefail
out=$(realpath -m "${1:?usage: make_http_capture.sh OUT.pcap [SIZE_MB]}")
size_mb=${2:-1024}
. "$(dirname "$0")/loopback.sh"
enter_netns "$0" "$@"
work=$(mktemp -d /tmp/trawl-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; nginx -c "$work/nginx.conf" -s stop 2>/dev/null || true; rm -rf "$work"' EXIT
ethernet_loopback

# A static site: small text, JSON, binaries, an index page.
site=$work/site; mkdir -p "$site/static" "$site/json" "$site/bin"
python3 - "$site" <<'PY'
import os, random, sys, json
random.seed(7)
root = sys.argv[1]
words = "alpha beta gamma delta checkout cart order payment user session token invoice".split()
for i in range(200):
    n = random.randint(100, 1000)
    open(f"{root}/static/s{i}.txt", "w").write(" ".join(random.choice(words) for _ in range(n // 6))[:n])
for i in range(100):
    items = [{"id": j, "sku": f"SKU-{random.randint(1000,9999)}", "qty": random.randint(1,5), "name": random.choice(words)} for j in range(random.randint(10, 50))]
    open(f"{root}/json/j{i}.json", "w").write(json.dumps({"order": i, "items": items}))
for i in range(40):
    size = random.choice([8, 16, 32, 64, 128, 256]) * 1024 if i < 36 else 1024 * 1024
    open(f"{root}/bin/b{i}.bin", "wb").write(os.urandom(size))
open(f"{root}/index.html", "w").write("<html><body>" + "".join(f"<a href='/static/s{i}.txt'>{i}</a>" for i in range(200)) + "</body></html>")
PY
# nginx workers run unprivileged: the site must be world-readable.
chmod -R a+rX "$work"
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  types { text/plain txt; application/json json; application/octet-stream bin; text/html html; }
  gzip on; gzip_types text/plain application/json; gzip_min_length 200;
  keepalive_requests 1000;
  client_body_temp_path $work/body; proxy_temp_path $work/proxy; fastcgi_temp_path $work/fcgi; uwsgi_temp_path $work/uwsgi; scgi_temp_path $work/scgi;
  server {
    listen 127.0.0.1:8080;
    root $site;
    location /api/ { default_type application/json; return 200 '{"ok":true,"id":42}'; }
  }
}
CONF
nginx -c "$work/nginx.conf"

cat > "$work/mix.lua" <<'LUA'
math.randomseed(11)
local agents = {"Mozilla/5.0 (X11; Linux x86_64)", "curl/7.88.1", "python-requests/2.31", "Go-http-client/1.1"}
request = function()
  local r = math.random(100)
  local h = {["User-Agent"] = agents[math.random(#agents)], ["Accept-Encoding"] = "gzip"}
  if CLOSE then h["Connection"] = "close" end
  local path
  if r <= 6 then
    h["Content-Type"] = "application/json"
    return wrk.format("POST", "/api/orders", h, '{"sku":"SKU-' .. math.random(1000,9999) .. '","qty":1}')
  elseif r <= 9 then path = "/missing/" .. math.random(1000)
  elseif MEDIUM then
    if r <= 60 then path = "/bin/b" .. math.random(0, 39) .. ".bin" else path = "/json/j" .. math.random(0, 99) .. ".json" end
  else
    if r <= 70 then path = "/static/s" .. math.random(0, 199) .. ".txt" elseif r <= 90 then path = "/json/j" .. math.random(0, 99) .. ".json" else path = "/" end
  end
  return wrk.format("GET", path, h)
end
LUA
printf 'CLOSE=false MEDIUM=false\n' > "$work/ka_small.lua"
printf 'CLOSE=false MEDIUM=true\n' > "$work/ka_medium.lua"
printf 'CLOSE=true MEDIUM=false\n' > "$work/close_small.lua"
printf 'CLOSE=true MEDIUM=true\n' > "$work/close_medium.lua"
for p in ka_small ka_medium close_small close_medium; do cat "$work/mix.lua" >> "$work/$p.lua"; done

round() {
  wrk -t1 -c32 -d2s -s "$work/ka_small.lua" http://127.0.0.1:8080 >/dev/null
  wrk -t1 -c4 -d1s -s "$work/ka_medium.lua" http://127.0.0.1:8080 >/dev/null
  wrk -t1 -c16 -d2s -s "$work/close_small.lua" http://127.0.0.1:8080 >/dev/null
  wrk -t1 -c4 -d1s -s "$work/close_medium.lua" http://127.0.0.1:8080 >/dev/null
  for i in 1 2 3; do
    curl -s -0 -o /dev/null "http://127.0.0.1:8080/static/s$i.txt" || true
    curl -s --compressed -o /dev/null "http://127.0.0.1:8080/json/j$i.json" || true
  done
}
record_until "$out" "$size_mb" 'tcp port 8080' round
