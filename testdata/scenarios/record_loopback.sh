#!/usr/bin/env bash
# Shared by the scenario recorders: runs COMMAND inside a private network
# namespace (unshare -n) with loopback up, while tcpdump records the
# loopback traffic that matches FILTER into OUT. No packet leaves the
# namespace.
#
#   record_loopback.sh OUT FILTER -- COMMAND [ARGS...]
#
# Needs root, unshare, tcpdump.
set -euo pipefail
out=$(realpath -m "${1:?usage: record_loopback.sh OUT FILTER -- COMMAND...}")
filter=${2:?usage: record_loopback.sh OUT FILTER -- COMMAND...}
[ "${3:-}" = -- ] || { echo "record_loopback.sh: expected -- before the command" >&2; exit 2; }
shift 3
if [ -z "${TRAWL_IN_NETNS:-}" ]; then
  export TRAWL_IN_NETNS=1
  exec unshare -n -- "$0" "$out" "$filter" -- "$@"
fi
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
ip link set lo up
tcpdump -i lo -s 0 -U -w "$out" "$filter" 2>/dev/null &
tcpdump_pid=$!
sleep 1
"$@"
sleep 1
kill "$tcpdump_pid"
wait "$tcpdump_pid" 2>/dev/null || true
