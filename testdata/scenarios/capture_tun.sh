#!/usr/bin/env bash
# Captures a raw-IP interface (no link header, as WireGuard and IP
# tunnels are): a tun device in a private network namespace, its far end
# played by tun_echo.py, which echoes UDP (port 7) and answers pings.
# python3 sends 20 UDP datagrams of 1..20 bytes to 10.82.0.2:7, each
# answered, and 3 ICMP echo requests; `trawl capture` and tcpdump record
# the device at the same time.
#
#   testdata/scenarios/capture_tun.sh TRAWL OUT_DIR [CAPTURE ARGS...]
#
# Writes OUT_DIR/tcpdump.pcap, OUT_DIR/archive/tun/*.pcapng and
# OUT_DIR/trawl.log. TCPDUMP_FILTER, if set, is tcpdump's filter.
set -euo pipefail
bin=$(realpath "$1"); out=$(realpath -m "$2"); shift 2
here=$(dirname "$(realpath "$0")")
. "$here/netns.sh"
ns=trawl-tun-$$; dev=ttun$$
cleanup() { kill $(jobs -p) 2>/dev/null || true; ip netns del $ns 2>/dev/null || true; }
trap cleanup EXIT
rm -rf "$out"; mkdir -p "$out"
ip netns add $ns
ip -n $ns link set lo up
ip netns exec $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec $ns python3 "$here/tun_echo.py" $dev > "$out/peer.log" 2>&1 &
await_line "$out/peer.log" ready
ip -n $ns addr add 10.82.0.1/24 dev $dev
ip -n $ns link set $dev up
side_by_side "$bin" $ns $dev "$out" tun "$@"
ip netns exec $ns python3 -c '
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
for i in range(1, 21):
    s.sendto(b"e" * i, ("10.82.0.2", 7))
    assert s.recvfrom(100)[0] == b"e" * i
p = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
p.settimeout(2)
for seq in range(1, 4):
    body = struct.pack("!HH", 0x7472, seq) + b"trawl"
    # Checksum over type/code/0/id/seq/payload.
    msg = b"\x08\x00\x00\x00" + body
    w = msg + b"\0" * (len(msg) % 2)
    s16 = sum(struct.unpack("!%dH" % (len(w) // 2), w))
    while s16 >> 16:
        s16 = (s16 & 0xFFFF) + (s16 >> 16)
    msg = msg[:2] + struct.pack("!H", ~s16 & 0xFFFF) + msg[4:]
    p.sendto(msg, ("10.82.0.2", 0))
    reply = p.recvfrom(200)[0]
    assert reply[20] == 0, reply
print("echoed 20 datagrams and 3 pings")
'
sleep 1
kill -TERM $tr; wait $tr
kill $td; wait $td 2>/dev/null || true
cat "$out/trawl.log"
