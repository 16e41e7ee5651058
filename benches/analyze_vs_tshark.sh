#!/usr/bin/env bash
# Times `trawl analyze` against `tshark -q -z http,tree` on the same capture
# of real HTTP traffic, in one run, and prints a Markdown table.
#
#   benches/analyze_vs_tshark.sh [CAPTURE] [RUNS]
#
# Without CAPTURE, benches/data/http-1g.pcap is recorded first by
# benches/make_http_capture.sh (root, nginx, wrk, curl, tcpdump, ethtool).
# Needs tshark and GNU time (Debian: tshark, time).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${2:-3}
. benches/common.sh
bench_setup "${1:-}"
out=$(mktemp -d /tmp/trawl-bench-out.XXXXXX)
trap 'rm -rf "$out"' EXIT
size=$(stat -c %s "$cap")
mb=$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1e6 }')

results=()
for i in $(seq "$runs"); do
  results+=("$(measure trawl "$bin" analyze "$cap" -o "$out/snap" --force -q -j 2)")
done
results+=("$(measure tshark tshark -q -z http,tree -r "$cap")")
frames=$("$bin" analyze "$cap" -o "$out/snap" --force --json | python3 -c 'import json,sys; c=json.load(sys.stdin)["manifest"]["counters"]; print(c["frames"], c["tcp_flows"], c["http_requests"])')

printf '%s\n' "${results[@]}" | summarize | awk -v mb="$mb" -v size="$size" -v facts="$frames" '
  BEGIN {
    split(facts, f, " ")
    printf "Capture: %s MB, %d frames, %d TCP connections, %d HTTP requests\n\n", mb, f[1], f[2], f[3]
    print "| tool | runs | median wall (s) | MB/s (wall) | CPU s (user+sys, mean) | MB per CPU-s | peak RSS (MB) |"
    print "|---|---|---|---|---|---|---|"
  }
  { med[$1] = $3; printf "| %s | %d | %.2f | %.0f | %.2f | %.0f | %.0f |\n", $1, $2, $3, size / 1e6 / $3, $4, size / 1e6 / $4, $5 }
  END { printf "\nthroughput ratio trawl/tshark (wall): %.1fx\n", med["tshark"] / med["trawl"] }'
