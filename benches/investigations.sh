#!/usr/bin/env bash
# Time and memory of the investigations on a snapshot of real traffic:
# benches/data/http-1g.pcap (1.66 GB, 197k HTTP calls from nginx and wrk,
# recorded by make_http_capture.sh if missing) analysed once, then each
# of trawl map, retries, redundant, timeline, trace, audit and diff run
# RUNS times (default 5) on 2 threads.
#
#   benches/investigations.sh [RUNS]
#
# Prints per command: runs, median wall s, mean CPU s, peak RSS MB.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh
runs=${1:-5}
bench_setup ""
snap=benches/data/http-1g.snap
if [ ! -f "$snap/manifest.json" ] || [ "$bin" -nt "$snap/manifest.json" ]; then
  "$bin" analyze "$cap" -o "$snap" --force --quiet
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
calls=$("$bin" query "$snap" --count)
first=$("$bin" query "$snap" --limit 1 --format csv --columns id | tail -1)
echo "snapshot: $calls calls"
for _ in $(seq "$runs"); do
  measure map "$bin" map "$snap" -j 2 --format json
  measure retries "$bin" retries "$snap" -j 2 --format json
  measure redundant "$bin" redundant "$snap" -j 2 --format json
  measure timeline "$bin" timeline "$snap" -j 2 --format json
  measure trace "$bin" trace "$snap" "$first" -j 2 --format json
  measure audit "$bin" audit "$snap" -j 2 --format json
  measure diff "$bin" diff "$snap" "$snap" -j 2 --format json
done | summarize | awk 'BEGIN { print "command runs median_wall_s mean_cpu_s peak_rss_mb" } { print }' | column -t
