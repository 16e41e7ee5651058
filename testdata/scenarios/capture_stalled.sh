#!/usr/bin/env bash
# `trawl capture` falling behind until its buffer overflows: trawl
# records one end of a veth pair between two network namespaces, is
# stopped (SIGSTOP, as a starved process would be) while python3 sends
# COUNT UDP datagrams of 1,400 bytes, then resumes, drains its buffer
# and is stopped with SIGTERM. Nothing else crosses the interface (IPv6
# off, a static neighbour entry: no ARP), so every datagram sent is
# either in trawl's files or counted as dropped.
#   ns A: 10.81.0.1 (sender, trawl)   ns B: 10.81.0.2 (nothing listens)
#
#   testdata/scenarios/capture_stalled.sh TRAWL OUT_DIR COUNT [CAPTURE ARGS...]
#
# Prints "sent N"; writes OUT_DIR/archive/stalled/*.pcapng and
# OUT_DIR/trawl.log.
set -euo pipefail
bin=$(realpath "$1"); out=$(realpath -m "$2"); count=$3; shift 3
rm -rf "$out"; mkdir -p "$out"
. "$(dirname "$0")/netns.sh"
veth_pair ts 10.81.0 neigh
a=$ns_a; va=$if_a
ip netns exec $a "$bin" capture --iface $va --out "$out/archive" --node stalled "$@" 2> "$out/trawl.log" &
tr=$!
await_line "$out/trawl.log" "capturing on"
sleep 0.5
kill -STOP $tr
ip netns exec $a python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(('10.81.0.2', 9))
d = b'x' * 1400
n = 0
for _ in range($count):
    s.send(d); n += 1
print('sent', n)
"
kill -CONT $tr
sleep 1
kill -TERM $tr; wait $tr
