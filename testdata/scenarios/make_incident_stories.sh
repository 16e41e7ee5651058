#!/usr/bin/env bash
# Records the incident stories (issue "Investigations"): the shop of
# stories/shop.py (a gateway, an orders service over redis-server, a
# payment service; Python's standard HTTP server and client) and curl as
# the customer, each on its own loopback address inside a private
# network namespace (record_loopback.sh):
#   127.0.0.10  curl            127.0.0.2:8080  gateway
#   127.0.0.3:8081  orders      127.0.0.4:6379  redis-server
#   127.0.0.5:8082  payment
# The customer reads an order three times (GET /orders/42), checks out
# once (POST /checkout: the gateway retries the failing charge), and pays
# three times (POST /pay: the gateway gives up on a slow payment after
# 1 s). Every customer request carries an X-Request-Id, which the
# gateway passes on. MODE broken or fixed (see shop.py for what changes).
#
# Needs root, unshare, tcpdump, curl, redis-server, python3.
#
#   testdata/scenarios/make_incident_stories.sh MODE OUT.pcap
set -euo pipefail
here=$(dirname "$(realpath "$0")")
if [ "${1:-}" != --inside ]; then
  mode=${1:?usage: make_incident_stories.sh broken|fixed OUT.pcap}
  out=${2:?usage: make_incident_stories.sh broken|fixed OUT.pcap}
  exec "$here/record_loopback.sh" "$out" 'tcp and net 127.0.0.0/8' -- "$0" --inside "$mode"
fi
mode=$2
work=$(mktemp -d /tmp/trawl-stories.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
for a in 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 127.0.0.10; do ip addr add "$a/8" dev lo 2>/dev/null || true; done
redis-server --bind 127.0.0.4 --port 6379 --protected-mode no --unixsocket "$work/redis.sock" --save '' --appendonly no --dir "$work" --logfile "$work/redis.log" &
for _ in $(seq 50); do redis-cli -s "$work/redis.sock" ping >/dev/null 2>&1 && break; sleep 0.1; done
# Seeded over the Unix socket, which tcpdump does not see.
redis-cli -s "$work/redis.sock" SET order:42 '{"id": 42, "item": "hammer", "total": 12.5}' >/dev/null
for role in orders payment gateway; do python3 "$here/stories/shop.py" "$mode" "$role" & done
# Listening is checked with ss, which sends nothing.
for port in 8081 8082 8080; do
  for _ in $(seq 50); do ss -ltn "sport = :$port" | grep -q LISTEN && break; sleep 0.1; done
done
customer() { curl -s --interface 127.0.0.10 -o /dev/null -w '%{http_code}\n' "$@" || true; }
for i in 1 2 3; do customer -H "X-Request-Id: read-$i" http://127.0.0.2:8080/orders/42; done
customer -X POST -H 'X-Request-Id: checkout-1' -H 'Content-Type: application/json' -d '{"order": 42}' http://127.0.0.2:8080/checkout
for i in 1 2 3; do customer -X POST -H "X-Request-Id: pay-$i" -H 'Content-Type: application/json' -d '{"order": 42, "amount": 12.5}' http://127.0.0.2:8080/pay; done
sleep 2
