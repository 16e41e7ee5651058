#!/usr/bin/env bash
# Records a request-dense capture for the benchmarks: many small API calls,
# where the cost per call (not per byte) rules. nginx (1 worker) on
# 127.0.0.1:8080 answers small JSON (20-400 bytes) for GETs of
# /api/items/N, /api/users/N and /api/health, POSTs of /api/orders with a
# small JSON body, and errors: 404 for unknown paths, 503 from
# /api/inventory (about 5% of calls are errors). Each round, wrk drives it
# over 64 keep-alive connections for 2 s, then over 8 short connections
# (`Connection: close`, one call each) for 1 s, until about SIZE_MB were
# recorded.
#
#   benches/make_api_capture.sh OUT.pcap [SIZE_MB]      (default 300 MB)
#
# Inside a private network namespace (unshare -n); loopback gets MTU 1500
# and no offloads. tcpdump records it. Needs root, nginx, wrk, tcpdump,
# ethtool.
set -euo pipefail
out=$(realpath -m "${1:?usage: make_api_capture.sh OUT.pcap [SIZE_MB]}")
size_mb=${2:-300}
. "$(dirname "$0")/loopback.sh"
enter_netns "$0" "$@"
work=$(mktemp -d /tmp/trawl-bench-api.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; nginx -c "$work/nginx.conf" -s stop 2>/dev/null || true; rm -rf "$work"' EXIT
ethernet_loopback

cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000;
  client_body_temp_path $work/body; proxy_temp_path $work/proxy; fastcgi_temp_path $work/fcgi; uwsgi_temp_path $work/uwsgi; scgi_temp_path $work/scgi;
  server {
    listen 127.0.0.1:8080;
    default_type application/json;
    location = /api/health { return 200 '{"status":"ok"}'; }
    location ~ ^/api/items/(\d+)$ {
      return 200 '{"id":$1,"sku":"SKU-$1","name":"item $1","price":1999,"currency":"EUR","stock":12,"tags":["a","b"]}';
    }
    location ~ ^/api/users/(\d+)$ {
      return 200 '{"id":$1,"name":"user $1","email":"user$1@example.com","plan":"pro","created":"2026-01-01T00:00:00Z"}';
    }
    location = /api/orders { return 201 '{"order":"created","status":"pending"}'; }
    location = /api/inventory { return 503 '{"error":"inventory service unavailable","retry_after":2}'; }
    location / { return 404 '{"error":"not found"}'; }
  }
}
CONF
nginx -c "$work/nginx.conf"

cat > "$work/api.lua" <<'LUA'
math.randomseed(13)
short = os.getenv("SHORT") ~= nil
local agents = {"python-requests/2.31", "Go-http-client/1.1", "okhttp/4.12.0"}
request = function()
  local r = math.random(100)
  local h = {["User-Agent"] = agents[math.random(#agents)], ["Accept"] = "application/json",
             ["X-Request-Id"] = string.format("%08x%08x", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))}
  if short then h["Connection"] = "close" end
  if r <= 10 then
    h["Content-Type"] = "application/json"
    return wrk.format("POST", "/api/orders", h, '{"sku":"SKU-' .. math.random(1000, 9999) .. '","qty":' .. math.random(1, 5) .. '}')
  elseif r <= 55 then
    return wrk.format("GET", "/api/items/" .. math.random(1, 50000), h)
  elseif r <= 90 then
    return wrk.format("GET", "/api/users/" .. math.random(1, 20000) .. "?fields=name,email", h)
  elseif r <= 95 then
    return wrk.format("GET", "/api/health", h)
  elseif r <= 97 then
    return wrk.format("GET", "/api/inventory", h)
  end
  return wrk.format("GET", "/api/missing/" .. math.random(1000), h)
end
LUA

round() {
  wrk -t1 -c64 -d2s -s "$work/api.lua" http://127.0.0.1:8080 >/dev/null
  SHORT=1 wrk -t1 -c8 -d1s -s "$work/api.lua" http://127.0.0.1:8080 >/dev/null
}
record_until "$out" "$size_mb" 'tcp port 8080' round
