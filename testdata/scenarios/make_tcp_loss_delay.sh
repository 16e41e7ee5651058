#!/usr/bin/env bash
# Records a capture of real TCP traffic over a link with packet loss and
# delay, for the TCP expert metrics (docs/tcp-insights.md).
#
# Two network namespaces, "cli" and "srv", joined by a point-to-point
# link. The server's outgoing packets are delayed DELAY_MS and LOSS percent
# of them dropped: with `tc netem` where the kernel has sch_netem, else by
# testdata/scenarios/lossy_wire.py (a user-space netem over TUN devices;
# the CI VMs' kernel has no sch_netem). Python's http.server serves a
# 1 MiB file; curl fetches it COUNT times, one connection each. tcpdump
# records the server's side of the link (snaplen 200: headers are what
# the metrics need), where a segment is seen when it is sent, before the
# link loses it: the lost segments come back as retransmissions, and the
# handshake RTT (SYN to the client's ACK) is DELAY_MS. (With tc netem the
# qdisc drops before tcpdump's tap, so the losses show as out-of-order
# segments filling holes instead.)
#
# Needs root, unshare, iproute2, python3, curl, tcpdump.
#
#   testdata/scenarios/make_tcp_loss_delay.sh OUT.pcap [DELAY_MS=40] [LOSS=3] [COUNT=3]
set -euo pipefail
out=$(realpath -m "${1:?usage: make_tcp_loss_delay.sh OUT.pcap [DELAY_MS] [LOSS] [COUNT]}")
delay=${2:-40}
loss=${3:-3}
count=${4:-3}
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${TRAWL_IN_NETNS:-}" ]; then
  export TRAWL_IN_NETNS=1
  exec unshare -n -m --propagation private -- "$0" "$@"
fi
work=$(mktemp -d /tmp/trawl-lossy.XXXXXX)
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  ip netns pids srv 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns pids cli 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns del srv 2>/dev/null || true
  ip netns del cli 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mount -t tmpfs tmpfs /run 2>/dev/null || true
mkdir -p /run/netns
ip netns add cli
ip netns add srv
ip -n cli link set lo up
ip -n srv link set lo up
head -c 1048576 /dev/urandom > "$work/blob.bin"

if ip link add name trawl-netem-probe type veth peer name trawl-netem-peer 2>/dev/null \
  && tc qdisc add dev trawl-netem-probe root netem delay 1ms 2>/dev/null; then
  ip link del trawl-netem-probe
  ip link add name veth-cli type veth peer name veth-srv
  ip link set veth-cli netns cli
  ip link set veth-srv netns srv
  ip -n cli addr add 10.77.0.1/24 dev veth-cli
  ip -n srv addr add 10.77.0.2/24 dev veth-srv
  ip -n cli link set veth-cli up
  ip -n srv link set veth-srv up
  ip netns exec srv tc qdisc add dev veth-srv root netem delay "${delay}ms" loss "${loss}%"
  dev=veth-srv
  echo "link: veth with tc netem (delay ${delay}ms, loss ${loss}%)" >&2
else
  ip link del trawl-netem-probe 2>/dev/null || true
  # The delay and loss apply to what the server sends: the client's end
  # of the wire delivers it late, or not at all.
  ip netns exec srv python3 "$here/lossy_wire.py" --tun tun-srv --addr 10.77.0.2 --peer 10.77.0.1 \
    --me "$work/srv.sock" --other "$work/cli.sock" > "$work/srv.log" 2>&1 &
  ip netns exec cli python3 "$here/lossy_wire.py" --tun tun-cli --addr 10.77.0.1 --peer 10.77.0.2 \
    --me "$work/cli.sock" --other "$work/srv.sock" --delay-ms "$delay" --loss "$loss" --seed 7 > "$work/cli.log" 2>&1 &
  for _ in $(seq 50); do
    grep -q ready "$work/cli.log" 2>/dev/null && grep -q ready "$work/srv.log" 2>/dev/null && break
    sleep 0.1
  done
  dev=tun-srv
  echo "link: TUN pair through lossy_wire.py (delay ${delay}ms, loss ${loss}%)" >&2
fi

ip netns exec srv python3 -m http.server 8080 --bind 10.77.0.2 --directory "$work" > "$work/http.log" 2>&1 &
ip netns exec srv tcpdump -i "$dev" -s 200 -U -w "$out" 2>/dev/null &
tcpdump_pid=$!
for _ in $(seq 50); do
  ip netns exec cli curl -s -o /dev/null --max-time 1 http://10.77.0.2:8080/ && break
  sleep 0.2
done
# The readiness probe is in the capture too; give it time to close.
sleep 1
for i in $(seq "$count"); do
  ip netns exec cli curl -s -o /dev/null --max-time 60 "http://10.77.0.2:8080/blob.bin?try=$i"
done
sleep 1
kill "$tcpdump_pid"
wait "$tcpdump_pid" 2>/dev/null || true
