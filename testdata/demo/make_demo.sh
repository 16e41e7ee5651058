#!/usr/bin/env bash
# Records testdata/demo/checkout.pcap: a small shop whose checkout starts
# failing. Real nginx and curl inside a private network namespace
# (unshare -n); tcpdump records loopback. Needs root, nginx, curl, tcpdump.
#
#   testdata/demo/make_demo.sh testdata/demo/checkout.pcap
set -euo pipefail
out=$(realpath -m "${1:?usage: make_demo.sh OUT.pcap}")
if [ -z "${TRAWL_IN_NETNS:-}" ]; then
  export TRAWL_IN_NETNS=1
  exec unshare -n -- "$0" "$@"
fi
work=$(mktemp -d /tmp/trawl-demo.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; nginx -c "$work/nginx.conf" -s stop 2>/dev/null || true; rm -rf "$work"' EXIT
ip link set lo up
mkdir -p "$work/site/api/products"
for i in 1 2 3 4 5; do printf '{"id":%d,"name":"product %d","price":%d.99,"stock":%d}' "$i" "$i" "$((i * 7))" "$((i * 3))" > "$work/site/api/products/$i"; done
python3 -c "import json; print(json.dumps({'products': [{'id': i, 'name': 'product %d' % i, 'description': 'A fine product. ' * 20} for i in range(1, 40)]}))" > "$work/site/api/catalog.json"
chmod -R a+rX "$work"
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 256; }
http {
  access_log off;
  default_type application/json;
  gzip on; gzip_types application/json; gzip_min_length 100;
  client_body_temp_path $work/body; proxy_temp_path $work/proxy; fastcgi_temp_path $work/fcgi; uwsgi_temp_path $work/uwsgi; scgi_temp_path $work/scgi;
  server {
    listen 127.0.0.2:8080;
    root $work/site;
    location = /api/cart { return 200 '{"items":2,"total":41.98}'; }
    # The payment backend is down: checkout fails with 502/504.
    location = /api/checkout { if (\$request_method = POST) { return 502 '{"error":"payment gateway unreachable"}'; } return 405; }
    location = /api/health { return 200 'ok'; }
  }
}
CONF
nginx -c "$work/nginx.conf"
tcpdump -i lo -s 0 -U -w "$out" 'tcp port 8080' 2>/dev/null &
sleep 1
base=http://127.0.0.2:8080
curl -s -o /dev/null "$base/api/health"
curl -s -o /dev/null --compressed "$base/api/catalog.json"
for i in 1 2 3; do curl -s -o /dev/null -o /dev/null "$base/api/products/$i" "$base/api/products/$((i + 1))"; done
curl -s -o /dev/null "$base/api/products/99"
curl -s -o /dev/null -X POST -H 'Content-Type: application/json' -d '{"sku":"SKU-1","qty":1}' "$base/api/cart"
for i in 1 2 3; do
  curl -s -o /dev/null -X POST -H 'Content-Type: application/json' -H "X-Request-Id: checkout-$i" -d '{"cart":"c-77","card":"tok_visa"}' "$base/api/checkout"
done
curl -s -0 -o /dev/null "$base/api/health"
curl -s -o /dev/null -H 'Expect: 100-continue' -X POST --data-binary @"$work/site/api/catalog.json" "$base/api/cart"
# A client that pipelines three requests on one connection.
python3 - <<'PY'
import socket
s = socket.create_connection(("127.0.0.2", 8080))
s.sendall(b"GET /api/products/1 HTTP/1.1\r\nHost: shop\r\n\r\n"
          b"GET /api/products/2 HTTP/1.1\r\nHost: shop\r\n\r\n"
          b"GET /api/health HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n")
while s.recv(65536):
    pass
s.close()
PY
sleep 1
kill %1
wait 2>/dev/null || true
echo "wrote $out ($(stat -c %s "$out") bytes)"
