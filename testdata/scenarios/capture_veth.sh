#!/usr/bin/env bash
# Captures real HTTP traffic across a veth pair between two private
# network namespaces with `trawl capture` (eBPF) and tcpdump at the same
# time, on the same interface:
#   ns trawl-cap-a-PID: curl on 10.77.0.1   ns trawl-cap-b-PID: python3 -m http.server on 10.77.0.2
# IPv6 is off in both namespaces (no link-up chatter before the captures
# start). Both captures run before the first request and stop after the
# last one.
#
#   testdata/scenarios/capture_veth.sh TRAWL OUT_DIR [CAPTURE ARGS...]
#
# Extra arguments go to `trawl capture` (backend, filter, rotation,
# retention); TCPDUMP_FILTER, if set, is tcpdump's filter expression.
# After the downloads, 20 UDP datagrams go to a closed port (and ICMP
# answers come back): traffic for filters to turn away.
# Writes OUT_DIR/tcpdump.pcap and OUT_DIR/archive/veth/*.pcapng.
set -euo pipefail
bin=$(realpath "$1"); out=$(realpath -m "$2"); shift 2
rm -rf "$out"; mkdir -p "$out/www"
. "$(dirname "$0")/netns.sh"
veth_pair tc 10.77.0 addr
a=$ns_a; b=$ns_b; va=$if_a
head -c 300000 /dev/urandom > "$out/www/blob.bin"
ip netns exec $b python3 -m http.server 8000 --bind 10.77.0.2 --directory "$out/www" >/dev/null 2>&1 &
side_by_side "$bin" $a $va "$out" veth "$@"
for _ in 1 2 3 4 5; do ip netns exec $a curl -s -o /dev/null http://10.77.0.2:8000/blob.bin; done
ip netns exec $a python3 -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(1, 21):
    s.sendto(b"d" * i, ("10.77.0.2", 9999))
    time.sleep(0.01)
'
sleep 1
kill -TERM $tr; wait $tr
kill $td; wait $td 2>/dev/null || true
cat "$out/trawl.log"
