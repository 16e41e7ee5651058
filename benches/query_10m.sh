#!/usr/bin/env bash
# Query latency over a 10-million-row calls table made of real rows.
#
#   benches/query_10m.sh [ROWS] [RUNS]
#
# Analyses benches/data/http-1g.pcap (recorded first by
# benches/make_http_capture.sh if missing: root, nginx, wrk, curl, tcpdump)
# into benches/data/http-1g.snap, then runs query/benches/kfl_10m.rs, which
# repeats that snapshot's 197k real calls into a ROWS-row table (default
# 10,000,000) and times KFL and SQL queries on 2 threads.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-10000000}
runs=${2:-5}
cap=benches/data/http-1g.pcap
snap=benches/data/http-1g.snap
if [ ! -f "$cap" ]; then
  mkdir -p benches/data
  benches/make_http_capture.sh "$cap" 1024
fi
cargo build --release --quiet --features cluster
bin=${CARGO_TARGET_DIR:-target}/release/trawl
if [ ! -f "$snap/manifest.json" ]; then
  "$bin" analyze "$cap" -o "$snap" --force --quiet
fi
cargo bench -p trawl-query --bench kfl_10m --quiet -- "$PWD/$snap" "$rows" "$runs"
# The command line end to end (open the snapshot, plan, print 100 rows).
big="$PWD/$snap-${rows}rows.snap"
start=$(date +%s.%N)
"$bin" query "$big" -j 2 --kfl 'http && status_code >= 400' --limit 100 >/dev/null 2>&1
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" 'BEGIN { printf "\n`trawl query` end to end (100 rows, table format): %.0f ms\n", (e - s) * 1000 }'
