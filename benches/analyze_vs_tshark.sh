#!/usr/bin/env bash
# Times `trawl analyze` against tshark on the same capture of real
# traffic, in one run, and prints a Markdown table.
#
#   benches/analyze_vs_tshark.sh [--http2] [CAPTURE] [RUNS]
#
# HTTP/1 (default): tshark runs `-q -z http,tree`; without CAPTURE,
# benches/data/http-1g.pcap is recorded first by
# benches/make_http_capture.sh (root, nginx, wrk, curl, tcpdump, ethtool).
# --http2: cleartext HTTP/2 on port 8080, tshark runs `-d
# tcp.port==8080,http2 -q -z http2,tree`; without CAPTURE,
# benches/data/http2-300m.pcap is recorded first by
# benches/make_http2_capture.sh (root, nginx, h2load, tcpdump, ethtool).
# Needs tshark and GNU time (Debian: tshark, time).
set -euo pipefail
cd "$(dirname "$0")/.."
http2=
if [ "${1:-}" = --http2 ]; then http2=1; shift; fi
runs=${2:-3}
. benches/common.sh
if [ -n "$http2" ]; then
  bench_setup "${1:-}" benches/data/http2-300m.pcap benches/make_http2_capture.sh 300
  tshark_args=(-d tcp.port==8080,http2 -q -z http2,tree)
  facts_py='print(c["frames"], c["tcp_flows"], c["http2_requests"], "HTTP/2 requests", c["http2_frames"], "HTTP/2 frames")'
else
  bench_setup "${1:-}"
  tshark_args=(-q -z http,tree)
  facts_py='print(c["frames"], c["tcp_flows"], c["http_requests"], "HTTP requests")'
fi
out=$(mktemp -d /tmp/trawl-bench-out.XXXXXX)
trap 'rm -rf "$out"' EXIT
size=$(stat -c %s "$cap")
mb=$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1e6 }')

results=()
for i in $(seq "$runs"); do
  results+=("$(measure trawl "$bin" analyze "$cap" -o "$out/snap" --force -q -j 2)")
done
results+=("$(measure tshark tshark "${tshark_args[@]}" -r "$cap")")
facts=$("$bin" analyze "$cap" -o "$out/snap" --force --json | python3 -c "import json,sys; c=json.load(sys.stdin)['manifest']['counters']; $facts_py")

printf '%s\n' "${results[@]}" | summarize | awk -v mb="$mb" -v size="$size" -v facts="$facts" '
  BEGIN {
    n = split(facts, f, " ")
    rest = ""; for (i = 3; i <= n; i++) rest = rest (i > 3 ? " " : "") f[i]
    printf "Capture: %s MB, %d frames, %d TCP connections, %s\n\n", mb, f[1], f[2], rest
    print "| tool | runs | median wall (s) | MB/s (wall) | CPU s (user+sys, mean) | MB per CPU-s | peak RSS (MB) |"
    print "|---|---|---|---|---|---|---|"
  }
  { med[$1] = $3; printf "| %s | %d | %.2f | %.0f | %.2f | %.0f | %.0f |\n", $1, $2, $3, size / 1e6 / $3, $4, size / 1e6 / $4, $5 }
  END { printf "\nthroughput ratio trawl/tshark (wall): %.1fx\n", med["tshark"] / med["trawl"] }'
