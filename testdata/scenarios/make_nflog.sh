#!/usr/bin/env bash
# Records a Linux NFLOG capture (link type 239) of real HTTP: what
# `iptables -j NFLOG` and `tcpdump -i nflog:GROUP` produce on a host that
# logs packets through netfilter instead of capturing on an interface.
#
# In a network namespace of its own (unshare -n), an iptables rule sends
# every TCP packet leaving the loopback interface to NFLOG group 5;
# tcpdump records that group. Python's http.server serves a small file;
# curl fetches it, then a missing path (a 404), one connection each.
#
# Needs root, unshare, iptables, tcpdump, python3, curl.
#
#   testdata/scenarios/make_nflog.sh OUT.pcap
set -euo pipefail
out=$(realpath -m "${1:?usage: make_nflog.sh OUT.pcap}")
if [ -z "${TRAWL_IN_NETNS:-}" ]; then
  export TRAWL_IN_NETNS=1
  exec unshare -n -- "$0" "$@"
fi
work=$(mktemp -d /tmp/trawl-nflog.XXXXXX)
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip link set lo up
iptables -A OUTPUT -o lo -p tcp -j NFLOG --nflog-group 5
printf '{"order": 42, "status": "paid"}\n' > "$work/order.json"
(cd "$work" && exec python3 -m http.server 8000 --bind 127.0.0.1 >/dev/null 2>&1) &
tcpdump -i nflog:5 -w "$work/out.pcap" -U 2>"$work/tcpdump.err" &
tcpdump_pid=$!
# Listening is checked with ss, which sends nothing.
for _ in $(seq 50); do ss -ltn "sport = :8000" | grep -q LISTEN && break; sleep 0.1; done
for _ in $(seq 50); do grep -q listening "$work/tcpdump.err" && break; sleep 0.1; done
curl -s -o /dev/null http://127.0.0.1:8000/order.json
curl -s -o /dev/null http://127.0.0.1:8000/missing
sleep 1
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" || true
mv "$work/out.pcap" "$out"
