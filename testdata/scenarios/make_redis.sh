#!/usr/bin/env bash
# Records the Redis scenario: a real redis-server 7 and redis-cli on
# loopback inside a private network namespace (record_loopback.sh):
#   - one connection of commands read from stdin (one client, in order):
#     SET, GET, GET of a missing key (null), INCR, INCR of a string (an
#     ERR reply), LPUSH on a string key (a WRONGTYPE reply), RPUSH,
#     LRANGE, HSET, HGETALL;
#   - HGETALL again over RESP3 (`redis-cli -3`: HELLO 3, then a map);
#   - a subscriber (SUBSCRIBE news) that receives two PUBLISHes from
#     another connection.
#
# Needs root, unshare, tcpdump, redis-server and redis-cli (Debian:
# redis-server).
#
#   testdata/scenarios/make_redis.sh OUT.pcap
set -euo pipefail
here=$(dirname "$(realpath "$0")")
if [ "${1:-}" != --inside ]; then
  out=${1:?usage: make_redis.sh OUT.pcap}
  exec "$here/record_loopback.sh" "$out" 'tcp port 6379' -- "$0" --inside
fi
work=$(mktemp -d /tmp/trawl-redis.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --dir "$work" --logfile "$work/redis.log" &
for _ in $(seq 50); do redis-cli -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli <<'CMDS'
SET session:1 alice
GET session:1
GET session:missing
INCR visits
INCR session:1
LPUSH session:1 x
RPUSH queue a b c
LRANGE queue 0 -1
HSET user:1 name alice plan pro
HGETALL user:1
CMDS
redis-cli -3 HGETALL user:1
timeout 3 redis-cli SUBSCRIBE news > "$work/sub.txt" &
sleep 0.5
redis-cli PUBLISH news hello
redis-cli PUBLISH news world
sleep 0.5
cat "$work/sub.txt"
