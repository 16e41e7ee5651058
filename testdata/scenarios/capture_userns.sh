#!/usr/bin/env bash
# `trawl capture` where eBPF is not allowed: inside a new user namespace
# (and its own network namespace), root has no CAP_BPF over the kernel,
# so loading the TC program fails and trawl must fall back to AF_PACKET
# by itself. dumpcap (Wireshark's capture engine) captures the same
# interface at the same time; tcpdump cannot run here (it drops to its
# own user, which the namespace does not map).
#   veth v0 (10.78.0.1) <-> v1 (no address; a static neighbour entry for
#   10.78.0.2 points at v1), 30 UDP datagrams of 1..30 bytes from python3.
#
#   testdata/scenarios/capture_userns.sh TRAWL OUT_DIR
#
# Writes OUT_DIR/dumpcap.pcapng, OUT_DIR/archive/userns/*.pcapng and
# OUT_DIR/trawl.log.
set -euo pipefail
bin=$(realpath "$1"); out=$(realpath -m "$2")
rm -rf "$out"; mkdir -p "$out"
export bin out
exec unshare --user --map-root-user --net bash -euo pipefail -c '
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip link add v0 type veth peer name v1
ip addr add 10.78.0.1/24 dev v0
ip link set v0 up; ip link set v1 up
mac=$(ip -o link show v1 | grep -o "link/ether [0-9a-f:]*" | cut -d" " -f2)
ip neigh add 10.78.0.2 lladdr "$mac" dev v0
dumpcap -q -i v0 -s 0 -w "$out/dumpcap.pcapng" 2> "$out/dumpcap.log" &
dc=$!
"$bin" capture --iface v0 --out "$out/archive" --node userns 2> "$out/trawl.log" &
tr=$!
for _ in $(seq 100); do grep -q "capturing on" "$out/trawl.log" 2>/dev/null && grep -q "Capturing on" "$out/dumpcap.log" 2>/dev/null && break; sleep 0.1; done
sleep 0.5
python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((\"10.78.0.1\", 0))
for i in range(1, 31):
    s.sendto(b\"u\" * i, (\"10.78.0.2\", 9999))
"
sleep 1
kill -TERM $tr; wait $tr
kill -INT $dc; wait $dc || true
cat "$out/trawl.log"
'
