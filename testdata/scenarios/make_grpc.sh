#!/usr/bin/env bash
# Records the gRPC scenario (grpc/inventory.py): a real grpcio server and
# client making unary, server-streaming, client-streaming (gzip) and
# bidirectional calls plus two failing calls, over one cleartext HTTP/2
# connection on loopback inside a private network namespace
# (record_loopback.sh). Also writes the service's descriptor set.
#
# Needs root, unshare, tcpdump, python3 with grpcio and grpcio-tools.
#
#   testdata/scenarios/make_grpc.sh OUT.pcap [DESCRIPTOR_SET_OUT]
set -euo pipefail
out=${1:?usage: make_grpc.sh OUT.pcap [DESCRIPTOR_SET_OUT]}
here=$(dirname "$(realpath "$0")")
exec "$here/record_loopback.sh" "$out" 'tcp port 50051' -- python3 "$here/grpc/inventory.py" ${2:+--descriptor-set "$(realpath -m "$2")"}
