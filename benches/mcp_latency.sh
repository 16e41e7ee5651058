#!/usr/bin/env bash
# Latency of MCP tool calls over a snapshot of ROWS real calls, measured by
# the official Python MCP client through `trawl mcp` over stdio: what an
# agent waits for, JSON-RPC and serialisation included.
#
#   benches/mcp_latency.sh [ROWS] [RUNS]
#
# The snapshot is the ROWS-row table benches/query_10m.sh builds (real calls
# of benches/data/http-1g.pcap repeated; default 10,000,000); it is made
# first if missing. Needs python3 with `pip install mcp==2.3.0`.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-10000000}
runs=${2:-20}
source benches/common.sh
bench_setup benches/data/http-1g.pcap
snap=benches/data/http-1g.snap
if [ ! -f "$snap/manifest.json" ]; then
  "$bin" analyze "$cap" -o "$snap" --force --quiet
fi
big="$snap-${rows}rows.snap"
if [ ! -f "$big/manifest.json" ]; then
  cargo bench -p trawl-query --bench kfl_10m --quiet -- "$PWD/$snap" "$rows" 1
fi
data=benches/data/mcp-data
mkdir -p "$data/snapshots"
ln -sfn "$PWD/$big" "$data/snapshots/calls-${rows}"
python3 benches/mcp_latency.py "$bin" "$data" "calls-${rows}" "$runs" $((rows / 2))
