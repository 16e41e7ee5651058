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
a=trawl-stall-a-$$; b=trawl-stall-b-$$; va=tsa$$; vb=tsb$$
cleanup() { kill -CONT $(jobs -p) 2>/dev/null || true; kill $(jobs -p) 2>/dev/null || true; ip netns del $a 2>/dev/null || true; ip netns del $b 2>/dev/null || true; }
trap cleanup EXIT
rm -rf "$out"; mkdir -p "$out"
cleanup
ip netns add $a; ip netns add $b
for ns in $a $b; do ip netns exec $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; done
ip link add $va type veth peer name $vb
ip link set $va netns $a; ip link set $vb netns $b
ip -n $a addr add 10.81.0.1/24 dev $va
ip -n $a link set $va up; ip -n $b link set $vb up
mac=$(ip -n $b -o link show $vb | grep -o "link/ether [0-9a-f:]*" | cut -d" " -f2)
ip -n $a neigh add 10.81.0.2 lladdr "$mac" dev $va nud permanent
ip netns exec $a "$bin" capture --iface $va --out "$out/archive" --node stalled "$@" 2> "$out/trawl.log" &
tr=$!
for _ in $(seq 100); do grep -q "capturing on" "$out/trawl.log" 2>/dev/null && break; sleep 0.1; done
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
