#!/usr/bin/env bash
# Records the WebSocket scenario (web/websocket_chat.py): a real Python
# `websockets` server and client, one connection with permessage-deflate
# (text, binary, ping/pong, a fragmented message, close) and one without
# (the server closes with 4001). Loopback inside a private network
# namespace (unshare -n); tcpdump records it.
#
# Needs root, unshare, tcpdump, python3 with websockets.
#
#   testdata/scenarios/make_websocket.sh OUT.pcap
set -euo pipefail
out=$(realpath -m "${1:?usage: make_websocket.sh OUT.pcap}")
here=$(dirname "$(realpath "$0")")
if [ -z "${TRAWL_IN_NETNS:-}" ]; then
  export TRAWL_IN_NETNS=1
  exec unshare -n -- "$0" "$@"
fi
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
ip link set lo up
tcpdump -i lo -s 0 -U -w "$out" 'tcp port 8765' 2>/dev/null &
tcpdump_pid=$!
sleep 1
python3 "$here/web/websocket_chat.py"
sleep 1
kill "$tcpdump_pid"
wait "$tcpdump_pid" 2>/dev/null || true
