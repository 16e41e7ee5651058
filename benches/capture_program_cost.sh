#!/usr/bin/env bash
# What trawl's TC capture program (capture/bpf/tc_capture.c) costs the
# kernel per packet, from the kernel's own BPF statistics
# (kernel.bpf_stats_enabled: run_time_ns and run_cnt of each loaded
# program, read from the program's fdinfo). The program runs in the
# sender's context for every packet on the interface, so this is the tax
# a capture puts on the traffic; benches/capture_rate.sh shows it as the
# sender's lower peak rate.
#
# python3 sends COUNT UDP datagrams (default 200000) of 18 bytes (60-byte
# frames) and then COUNT of 1,400 bytes across a veth pair between two
# network namespaces while `trawl capture --backend ebpf` records the
# sending end (the egress program runs for each). Prints per frame size
# the packets the program ran for and its mean ns per packet.
#
#   benches/capture_program_cost.sh [TRAWL]      (needs root; TRAWL
#   defaults to the release build, which this builds: any build loads
#   the same BPF program, so a debug build measures the same thing)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-200000}
if [ -n "${1:-}" ]; then
  bin=$(realpath "$1")
else
  cargo build --release --quiet --features cluster
  bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/trawl")
fi
out=$(mktemp -d)
was=$(sysctl -n kernel.bpf_stats_enabled)
on_exit() { sysctl -qw kernel.bpf_stats_enabled="$was"; rm -rf "$out"; }
. testdata/scenarios/netns.sh
veth_pair tp 10.80.0 neigh
a=$ns_a; va=$if_a
sysctl -qw kernel.bpf_stats_enabled=1

# stats PID: "run_cnt run_time_ns" summed over the process's BPF programs.
stats() {
  local cnt=0 ns=0 f c t
  for f in /proc/$1/fdinfo/*; do
    grep -q '^prog_type:' "$f" 2>/dev/null || continue
    c=$(awk '/^run_cnt:/ { print $2 }' "$f"); t=$(awk '/^run_time_ns:/ { print $2 }' "$f")
    cnt=$((cnt + ${c:-0})); ns=$((ns + ${t:-0}))
  done
  echo "$cnt $ns"
}

ip netns exec $a "$bin" capture --iface $va --out "$out/cap" --node n --backend ebpf 2>"$out/log" &
pid=$!
await_line "$out/log" "capturing on"
grep -q "backend: ebpf" "$out/log" || { cat "$out/log" >&2; exit 1; }
echo "frame_bytes packets ns_per_packet   (trawl's TC program, kernel $(uname -r), $(nproc) cores)"
for payload in 18 1400; do
  read -r c0 t0 < <(stats $pid)
  ip netns exec $a python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(('10.80.0.2', 9))
d = b'x' * $payload
for _ in range($count):
    s.send(d)
"
  read -r c1 t1 < <(stats $pid)
  awk -v c=$((c1 - c0)) -v t=$((t1 - t0)) -v f=$((payload + 42)) 'BEGIN { printf "%11d %7d %13.0f\n", f, c, c ? t / c : 0 }'
done
kill -INT $pid; wait $pid 2>/dev/null || true
