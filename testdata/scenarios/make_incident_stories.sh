#!/usr/bin/env bash
# Records the incident stories (issue "Investigations"): the shop of
# stories/shop.py (a gateway, an orders service over redis-server, a
# payment service; Python's standard HTTP server and client) and curl as
# the customer, each on its own loopback address inside a private
# network namespace (record_loopback.sh):
#   127.0.0.10  curl            127.0.0.2:8080  gateway
#   127.0.0.3:8081  orders      127.0.0.4:6379  redis-server
#   127.0.0.5:8082  payment         127.0.0.6:8443  a legacy TLS service
#                                                   (openssl s_server -www)
#   203.0.113.10:8083  an analytics service "outside" (a documentation
#                      address, on the namespace's own loopback)
# The customer reads an order three times (GET /orders/42), checks out
# once (POST /checkout: the gateway retries the failing charge), and pays
# three times (POST /pay: the gateway gives up on a slow payment after
# 1 s). Every customer request carries an X-Request-Id, which the
# gateway passes on, and a bearer token (broken: not the third order
# read). The customer also fetches a page over TLS from the legacy
# service: TLS 1.0 broken, TLS 1.3 fixed. MODE broken or fixed (see
# shop.py for the rest).
#
# MODE rush or cached records the rush instead: the fixed shop under
# load (shop.py), where a customer pays (payment is slow, the gateway
# answers 503 after its 1 s timeout) and, 50 ms later, twelve customers
# read the order at once, with no X-Request-Id.
#
# Needs root, unshare, tcpdump, curl, redis-server, python3, openssl.
#
#   testdata/scenarios/make_incident_stories.sh MODE OUT.pcap
set -euo pipefail
here=$(dirname "$(realpath "$0")")
if [ "${1:-}" != --inside ]; then
  mode=${1:?usage: make_incident_stories.sh broken|fixed|rush|cached OUT.pcap}
  out=${2:?usage: make_incident_stories.sh broken|fixed|rush|cached OUT.pcap}
  exec "$here/record_loopback.sh" "$out" 'tcp' -- "$0" --inside "$mode"
fi
mode=$2
work=$(mktemp -d /tmp/trawl-stories.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$work"' EXIT
for a in 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 127.0.0.6 127.0.0.10; do ip addr add "$a/8" dev lo 2>/dev/null || true; done
ip addr add 203.0.113.10/32 dev lo
redis-server --bind 127.0.0.4 --port 6379 --protected-mode no --unixsocket "$work/redis.sock" --save '' --appendonly no --dir "$work" --logfile "$work/redis.log" &
for _ in $(seq 50); do redis-cli -s "$work/redis.sock" ping >/dev/null 2>&1 && break; sleep 0.1; done
# Seeded over the Unix socket, which tcpdump does not see.
redis-cli -s "$work/redis.sock" SET order:42 '{"id": 42, "item": "hammer", "total": 12.5}' >/dev/null
for role in orders payment analytics gateway; do python3 "$here/stories/shop.py" "$mode" "$role" & done
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 -subj /CN=legacy.shop.test 2>/dev/null
if [ "$mode" = broken ]; then tls=(-tls1 -cipher 'DEFAULT:@SECLEVEL=0'); else tls=(-tls1_3); fi
openssl s_server -accept 127.0.0.6:8443 -cert "$work/cert.pem" -key "$work/key.pem" -www -quiet "${tls[@]}" >/dev/null 2>&1 &
# Listening is checked with ss, which sends nothing.
for port in 8081 8082 8083 8080 8443; do
  for _ in $(seq 50); do ss -ltn "sport = :$port" | grep -q LISTEN && break; sleep 0.1; done
done
customer() { curl -s --interface 127.0.0.10 -o /dev/null -w '%{http_code}\n' "$@" || true; }
token='Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjdXN0b21lci03In0.kR8bXz3mQ1vN5tP0sY7wA2cD4eF6gH8jL9'
if [ "$mode" = rush ] || [ "$mode" = cached ]; then
  customer -H "$token" -X POST -H 'Content-Type: application/json' -d '{"order": 42, "amount": 12.5}' http://127.0.0.2:8080/pay &
  rush=($!)
  sleep 0.05
  for _ in $(seq 12); do
    customer -H "$token" http://127.0.0.2:8080/orders/42 &
    rush+=($!)
  done
  wait "${rush[@]}"
  sleep 2
  exit 0
fi
for i in 1 2 3; do
  if [ "$mode" = broken ] && [ "$i" = 3 ]; then auth=(); else auth=(-H "$token"); fi
  customer "${auth[@]}" -H "X-Request-Id: read-$i" http://127.0.0.2:8080/orders/42
done
customer -H "$token" -X POST -H 'X-Request-Id: checkout-1' -H 'Content-Type: application/json' -d '{"order": 42}' http://127.0.0.2:8080/checkout
for i in 1 2 3; do customer -H "$token" -X POST -H "X-Request-Id: pay-$i" -H 'Content-Type: application/json' -d '{"order": 42, "amount": 12.5}' http://127.0.0.2:8080/pay; done
if [ "$mode" = broken ]; then old=(--tlsv1.0 --tls-max 1.0 --ciphers 'DEFAULT:@SECLEVEL=0'); else old=(--tlsv1.3); fi
customer -k "${old[@]}" --resolve legacy.shop.test:8443:127.0.0.6 https://legacy.shop.test:8443/
sleep 2
