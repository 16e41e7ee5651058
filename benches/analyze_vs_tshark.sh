#!/usr/bin/env bash
# Times `trawl analyze` against tshark on the same captures of real
# traffic, in one run, and prints a Markdown table: per capture, each
# tool's wall time, CPU seconds, CPU microseconds per call, MB/s, peak
# RSS, and trawl's speed-up over tshark.
#
#   benches/analyze_vs_tshark.sh [--http2] [--runs N] [CAPTURE...]
#
# HTTP/1 (default): tshark runs `-q -z http,tree`. Without CAPTURE, both
# traffic shapes, recorded first when missing:
#   request-dense  benches/data/api-150m.pcap   (make_api_capture.sh:
#                  small JSON calls, keep-alive and short connections,
#                  ~1,400 calls per MB)
#   bulk           benches/data/http-300m.pcap  (make_http_capture.sh:
#                  a static site with large bodies, ~120 calls per MB)
# --http2: cleartext HTTP/2 on port 8080, tshark runs `-d
# tcp.port==8080,http2 -q -z http2,tree`; without CAPTURE,
# benches/data/http2-300m.pcap is recorded first by
# benches/make_http2_capture.sh.
# trawl runs N times (default 3, 2 workers) and tshark once per capture,
# interleaved per capture. Recording needs root, nginx, wrk, tcpdump and
# ethtool (h2load for --http2); timing needs tshark and GNU time (Debian:
# tshark, time).
set -euo pipefail
cd "$(dirname "$0")/.."
http2=
runs=3
caps=()
while [ $# -gt 0 ]; do
  case $1 in
    --http2) http2=1 ;;
    --runs) runs=$2; shift ;;
    *) caps+=("$1") ;;
  esac
  shift
done
. benches/common.sh
if [ -n "$http2" ]; then
  [ ${#caps[@]} -gt 0 ] || { bench_setup "" benches/data/http2-300m.pcap benches/make_http2_capture.sh 300; caps=("$cap"); }
  tshark_args=(-d tcp.port==8080,http2 -q -z http2,tree)
  calls_key=http2_requests
elif [ ${#caps[@]} -eq 0 ]; then
  both_shapes
  caps=("$api" "$bulk")
  tshark_args=(-q -z http,tree)
  calls_key=api_calls
else
  tshark_args=(-q -z http,tree)
  calls_key=api_calls
fi
[ -n "${bin:-}" ] || bench_setup "${caps[0]}"
out=$(mktemp -d /tmp/trawl-bench-out.XXXXXX)
trap 'rm -rf "$out"' EXIT

echo "| capture | MB | calls | calls/MB | tool | runs | median wall (s) | CPU s (user+sys, mean) | CPU µs per call | MB/s (wall) | peak RSS (MB) | trawl speed-up (wall) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for cap in "${caps[@]}"; do
  [ -f "$cap" ] || { echo "analyze_vs_tshark: no capture at $cap" >&2; exit 2; }
  size=$(stat -c %s "$cap")
  calls=$("$bin" analyze "$cap" -o "$out/snap" --force --json \
    | python3 -c "import json,sys; print(json.load(sys.stdin)['manifest']['counters']['$calls_key'])")
  results=()
  for i in $(seq "$runs"); do
    results+=("$(measure trawl "$bin" analyze "$cap" -o "$out/snap" --force -q -j 2)")
  done
  results+=("$(measure tshark tshark "${tshark_args[@]}" -r "$cap")")
  printf '%s\n' "${results[@]}" | summarize | awk -v name="$(basename "$cap")" -v size="$size" -v calls="$calls" '
    { label[NR] = $1; n[NR] = $2; wall[NR] = $3; cpu[NR] = $4; rss[NR] = $5; if ($1 == "trawl") tw = $3; if ($1 == "tshark") sw = $3 }
    END {
      mb = size / 1e6
      for (i = 1; i <= NR; i++) {
        ratio = (label[i] == "trawl" && tw > 0) ? sprintf("%.1fx", sw / tw) : ""
        printf "| %s | %.1f | %d | %.0f | %s | %d | %.2f | %.2f | %.2f | %.0f | %.0f | %s |\n",
          name, mb, calls, calls / mb, label[i], n[i], wall[i], cpu[i], cpu[i] * 1e6 / calls, mb / wall[i], rss[i], ratio
      }
    }'
done
