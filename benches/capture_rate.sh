#!/usr/bin/env bash
# The highest packet rate each capture tool records with zero drops on
# this machine: trawl capture (eBPF backend, AF_PACKET backend) and
# tcpdump (its default 2 MiB buffer, and -B 65536: 64 MiB, the size of
# trawl's rings), each alone on the same veth interface at the same
# rates.
#
# A generator (capture/examples/udp_rate.rs, one core) sends UDP
# datagrams of PAYLOAD bytes (default 18: minimum-size 60-byte frames,
# the hardest case per byte) for SECS seconds (default 5) at each rate,
# from namespace A across a veth pair into namespace B, where the peer has
# no address (a static neighbour entry): no ARP, no ICMP, nothing but the
# datagrams crosses the interface. "max" is the generator flat out.
# A tool drops nothing at a rate when its file holds every datagram sent
# and it reports no drop.
#
# CORES=split (default) pins the generator to CPU 0 and the tool to CPU
# 1; CORES=shared pins both to CPU 0, so that the capture competes with
# the traffic for one core (where a machine is busy, the capture's cost
# shows as drops).
#
#   benches/capture_rate.sh [RATES...]      (needs root)
#
# Prints per tool and rate: datagrams sent, captured, reported dropped,
# and the tool's CPU seconds; then per tool the highest zero-drop rate.
set -euo pipefail
cd "$(dirname "$0")/.."
rates=${*:-"100000 200000 300000 400000 500000 max"}
secs=${SECS:-5}
payload=${PAYLOAD:-18}
cores=${CORES:-split}
case $cores in split) tool_cpu=1 ;; shared) tool_cpu=0 ;; *) echo "CORES: split or shared" >&2; exit 2 ;; esac
cargo build --release --quiet --features cluster
cargo build --release --quiet --example udp_rate -p trawl-capture
bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/trawl")
gen=$(realpath "${CARGO_TARGET_DIR:-target}/release/examples/udp_rate")
out=$(mktemp -d)
on_exit() { rm -rf "$out"; }
. testdata/scenarios/netns.sh
veth_pair tb 10.79.0 neigh
a=$ns_a; va=$if_a

# cpu PID: user+system seconds of a running process.
cpu() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat" 2>/dev/null || echo "?"; }

# run TOOL RATE: one capture alone at one rate; prints
# "TOOL RATE sent captured dropped cpu_s".
run() {
  local tool=$1 rate=$2 pid ready
  rm -rf "$out/cap"; mkdir -p "$out/cap"
  case $tool in
    trawl-ebpf|trawl-af-packet)
      ip netns exec $a taskset -c $tool_cpu "$bin" capture --iface $va --out "$out/cap" --node n --backend "${tool#trawl-}" 2>"$out/log" &
      ready="capturing on" ;;
    tcpdump) ip netns exec $a taskset -c $tool_cpu tcpdump -i $va -s 0 -w "$out/cap/t.pcap" 2>"$out/log" & ready="listening on" ;;
    tcpdump-B64M) ip netns exec $a taskset -c $tool_cpu tcpdump -i $va -s 0 -B 65536 -w "$out/cap/t.pcap" 2>"$out/log" & ready="listening on" ;;
  esac
  pid=$!
  await_line "$out/log" "$ready" || true
  sleep 0.5
  local r=$rate; [ "$rate" = max ] && r=100000000
  local sent; sent=$(ip netns exec $a taskset -c 0 "$gen" 10.79.0.2:9 "$r" "$secs" "$payload" | awk '{ print $2 }')
  sleep 0.5
  # `ip netns exec` and taskset exec the tool, so $pid is the tool itself.
  local used; used=$(cpu $pid)
  kill -INT $pid; wait $pid 2>/dev/null || true
  local got dropped
  if [[ $tool == trawl-* ]]; then
    got=$(sed -n 's/^captured \([0-9]*\) packets.*/\1/p' "$out/log")
    dropped=$(sed -n 's/.*dropped \([0-9]*\)[,)].*/\1/p' "$out/log" | head -1)
    # Count what the files hold, not only what trawl says it wrote.
    local held=0 f
    for f in "$out"/cap/n/*.pcapng; do held=$((held + $(capinfos -M -c -T "$f" | awk -F'\t' 'NR == 2 { print $2 }'))); done
    [ "$held" = "$got" ] || got="$held(files)/$got(said)"
  else
    got=$(sed -n 's/^\([0-9]*\) packets captured.*/\1/p' "$out/log")
    dropped=$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$out/log")
  fi
  echo "$tool $rate $sent $got ${dropped:-?} $used"
}

echo "tool rate_pps sent captured dropped cpu_s   (${secs}s per run, ${payload}-byte payloads, $(nproc) cores, CORES=$cores)"
for rate in $rates; do
  for tool in trawl-ebpf trawl-af-packet tcpdump tcpdump-B64M; do
    run $tool $rate | tee -a "$out/results"
  done
done
echo
echo "highest rate reached with zero drops (datagrams/s sent; where a tool never dropped, this is the sender's limit with it attached):"
awk '
  { tool = $1; if (!(tool in seen)) { seen[tool] = 1; order[++k] = tool } }
  $3 == $4 && $5 == 0 { r = $3 / '"$secs"'; if (r > best[tool]) best[tool] = r }
  END { for (j = 1; j <= k; j++) printf "  %-16s %s\n", order[j], (order[j] in best) ? sprintf("%.0f", best[order[j]]) : "none" }' "$out/results"
