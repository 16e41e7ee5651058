#!/usr/bin/env bash
# Records the WebSocket scenario (web/websocket_chat.py): a real Python
# `websockets` server and client, one connection with permessage-deflate
# (text, binary, ping/pong, a fragmented message, close) and one without
# (the server closes with 4001), on loopback inside a private network
# namespace (record_loopback.sh).
#
# Needs root, unshare, tcpdump, python3 with websockets.
#
#   testdata/scenarios/make_websocket.sh OUT.pcap
set -euo pipefail
out=${1:?usage: make_websocket.sh OUT.pcap}
here=$(dirname "$(realpath "$0")")
exec "$here/record_loopback.sh" "$out" 'tcp port 8765' -- python3 "$here/web/websocket_chat.py"
