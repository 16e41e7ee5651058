#!/usr/bin/env bash
# Records GraphQL over HTTP/1.1 and HTTP/2, and HTTP/2 entered both ways:
#   - curl --http2-prior-knowledge -> nginx (h2c, prior knowledge) ->
#     a graphql-core server over HTTP/1.1: a query and a mutation;
#   - curl -> the graphql-core server directly (HTTP/1.1): a shorthand
#     query, a mutation whose resolver fails, and a GET whose query does
#     not validate (both answered with an `errors` array);
#   - curl --http2 -> a hyper-h2 server by the HTTP/1.1 Upgrade (h2c):
#     two requests, the upgraded one (stream 1) and one more (stream 3).
# Loopback inside a private network namespace (record_loopback.sh).
#
# Needs root, unshare, tcpdump, nginx, curl, python3 with graphql-core and h2.
#
#   testdata/scenarios/make_http2_graphql.sh OUT.pcap
set -euo pipefail
here=$(dirname "$(realpath "$0")")
if [ "${1:-}" != --inside ]; then
  out=${1:?usage: make_http2_graphql.sh OUT.pcap}
  exec "$here/record_loopback.sh" "$out" 'tcp port 8080 or tcp port 8001 or tcp port 8002' -- "$0" --inside
fi
work=$(mktemp -d /tmp/trawl-h2gql.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; nginx -c "$work/nginx.conf" -s stop 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $work/body; proxy_temp_path $work/proxy; fastcgi_temp_path $work/fcgi; uwsgi_temp_path $work/uwsgi; scgi_temp_path $work/scgi;
  server {
    listen 127.0.0.1:8080 http2;
    location / { proxy_pass http://127.0.0.1:8001; proxy_http_version 1.1; }
  }
}
CONF
python3 "$here/web/graphql_server.py" 8001 &
python3 "$here/web/h2c_upgrade_server.py" 8002 &
nginx -c "$work/nginx.conf"
sleep 1
json='content-type: application/json'
curl -sS --http2-prior-knowledge -H "$json" http://127.0.0.1:8080/graphql \
  -d '{"query":"query GetItem($sku: String!) { item(sku: $sku) { name quantity } }","variables":{"sku":"A-1"},"operationName":"GetItem"}'
echo
curl -sS --http2-prior-knowledge -H "$json" http://127.0.0.1:8080/graphql \
  -d '{"query":"mutation AddBolt { addItem(sku: \"B-1\", name: \"bolt\", quantity: 40) { sku } }"}'
echo
curl -sS -H "$json" http://127.0.0.1:8001/graphql -d '{"query":"{ items { sku quantity } }"}'
echo
curl -sS -H "$json" http://127.0.0.1:8001/graphql -d '{"query":"mutation { addItem(sku: \"B-2\", name: \"nut\", quantity: -1) { sku } }"}'
echo
curl -sS -G http://127.0.0.1:8001/graphql --data-urlencode 'query={ nosuchfield }'
echo
curl -sS --http2 http://127.0.0.1:8002/first --next --http2 http://127.0.0.1:8002/second
echo
