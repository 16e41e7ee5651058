#!/usr/bin/env bash
# Records the gRPC scenario (grpc/inventory.py): a real grpcio server and
# client making unary, server-streaming, client-streaming (gzip) and
# bidirectional calls plus two failing calls, over one cleartext HTTP/2
# connection on loopback inside a private network namespace (unshare -n).
# tcpdump records it. Also writes the service's descriptor set.
#
# Needs root, unshare, tcpdump, python3 with grpcio and grpcio-tools.
#
#   testdata/scenarios/make_grpc.sh OUT.pcap [DESCRIPTOR_SET_OUT]
set -euo pipefail
out=$(realpath -m "${1:?usage: make_grpc.sh OUT.pcap [DESCRIPTOR_SET_OUT]}")
desc=${2:+$(realpath -m "$2")}
here=$(dirname "$(realpath "$0")")
if [ -z "${TRAWL_IN_NETNS:-}" ]; then
  export TRAWL_IN_NETNS=1
  exec unshare -n -- "$0" "$@"
fi
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
ip link set lo up
tcpdump -i lo -U -w "$out" 'tcp port 50051' 2>/dev/null &
tcpdump_pid=$!
sleep 1
python3 "$here/grpc/inventory.py" ${desc:+--descriptor-set "$desc"}
sleep 1
kill "$tcpdump_pid"
wait "$tcpdump_pid" 2>/dev/null || true
