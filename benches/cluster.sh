#!/usr/bin/env bash
# trawl's queries on a Ballista cluster against this machine alone
# (docs/scale.md), over a dataset of real calls repeated to ~100 million.
#
#   benches/cluster.sh [NODES] [RUNS]      (defaults 344 and 3)
#
# The dataset: the request-dense capture (benches/data/api-150m.pcap,
# make_api_capture.sh), cut into 10 rotated files and indexed NODES times
# as nodes node-000, node-001, ... (`trawl index --node`): every node
# holds the same real calls (290,898 each: 344 nodes make 100.07 million),
# as many nodes of one service would. Built once into
# benches/data/cluster-NODES.ds and kept (about 15 minutes for 344 nodes
# on 2 cores). The bulk capture gives a second, smaller dataset
# (30 nodes of benches/data/http-300m.pcap: few calls, large bodies).
#
# Then, interleaved, RUNS times each, the grouped p50/p99 by endpoint:
#   local      `trawl sql DATASET -j 2`
#   cluster-1  a scheduler and one executor of 2 slots
#   cluster-2  a scheduler and two executors of 1 slot each
# all on this 2-core machine, so the cluster can only add overhead; where
# the time goes comes from the scheduler's and executors' logs: planning,
# each stage's tasks (scan and partial aggregate, then the shuffle read
# and final aggregate), and what is left (submission, polling, fetching
# the result).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh
nodes=${1:-344}
runs=${2:-3}
both_shapes
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT

# dataset CAPTURE NODES DATASET: CAPTURE's calls indexed as NODES nodes
# (an interrupted build goes on where it stopped: indexing is exactly once).
dataset() {
  local c=$1 n=$2 ds=$3
  if [ -f "$ds/.complete" ]; then return; fi
  rm -rf "$out/arch"
  rotate "$c" "$out/arch/node-a" 10; mv "$out"/node-a-*.pcap "$out/arch/node-a/"
  local start=$SECONDS
  for i in $(seq 0 $((n - 1))); do
    "$bin" index "$out/arch/node-a" --to "$ds" --node "node-$(printf %03d "$i")" -q -j 2
  done
  echo "indexed $n nodes of $(basename "$c") in $((SECONDS - start)) s" >&2
  touch "$ds/.complete"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_cluster EXECUTORS SLOTS: a scheduler and EXECUTORS executors of
# SLOTS slots; sets $url and $logs.
start_cluster() {
  local port; port=$(free_port)
  url=df://127.0.0.1:$port
  logs=$out/cluster-$1x$2; mkdir -p "$logs"
  "$bin" cluster scheduler --bind "127.0.0.1:$port" 2>"$logs/scheduler.log" &
  until grep -q "listening on" "$logs/scheduler.log" 2>/dev/null; do sleep 0.1; done
  for e in $(seq "$1"); do
    "$bin" cluster executor --scheduler "$url" --bind "127.0.0.1:$(free_port)" --grpc-port "$(free_port)" \
      --slots "$2" --work-dir "$logs/work-$e" 2>"$logs/executor-$e.log" &
  done
  for e in $(seq "$1"); do
    until grep -q "registration succeed" "$logs/executor-$e.log" 2>/dev/null; do sleep 0.1; done
  done
}

stop_cluster() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; }

q="SELECT endpoint, count(*) AS calls, approx_percentile_cont(latency_ms, 0.5) AS p50, \
approx_percentile_cont(latency_ms, 0.99) AS p99 FROM calls GROUP BY endpoint ORDER BY calls DESC, endpoint"

# timed LABEL ARGS...: one run of the query, its wall time appended to
# $out/LABEL, its answer kept in $out/LABEL.csv (compared afterwards).
timed() {
  local label=$1; shift
  wall "$out/$label" "$bin" sql "$ds" --format csv -j 2 -c "$q" "$@" > "$out/$label.csv"
  tail -n +2 "$out/$label.csv" | sed "s/^/$label,/" >> "$out/answers"
}

# wall FILE COMMAND...: runs COMMAND (its output to stdout) and appends
# its wall seconds to FILE.
wall() {
  local file=$1; shift
  local s e
  s=$(date +%s.%N)
  "$@"
  e=$(date +%s.%N)
  awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f\n", e - s }' >> "$file"
}

# breakdown LOGS: from a cluster's logs, per job (after the probe jobs):
# planning ms, and per stage the tasks and their summed and longest ms.
breakdown() {
  python3 - "$1" <<'EOF'
import glob, re, sys, collections
logs = sys.argv[1]
sched = open(f"{logs}/scheduler.log").read()
planning = [float(m) for m in re.findall(r"planning took ([\d.]+)ms", sched)]
tasks = collections.defaultdict(list)
for f in glob.glob(f"{logs}/executor-*.log"):
    for job, stage, ms, unit in re.findall(r"Finished task : \[TID (\w+)/(\d+)\.\d+/[\d.]+\] in ([\d.]+)(ms|s|µs)", open(f).read()):
        scale = {"ms": 1, "s": 1000, "µs": 0.001}[unit]
        tasks[(job, int(stage))].append(float(ms) * scale)
jobs = sorted({j for j, _ in tasks})
# Each `trawl sql --cluster` runs a probe job and then the query: the
# query's job is the second of each pair.
rows = []
for job in jobs:
    stages = sorted(s for j, s in tasks if j == job)
    rows.append((job, [(s, len(tasks[(job, s)]), sum(tasks[(job, s)]), max(tasks[(job, s)])) for s in stages]))
queries = rows[1::2]
for job, stages in queries:
    print(job, " ".join(f"stage{s}:{n}tasks/{tot:.0f}ms/max{mx:.0f}ms" for s, n, tot, mx in stages))
print("planning_ms_per_job", " ".join(f"{p:.1f}" for p in planning[1::2]))
EOF
}

run_shape() {
  local shape=$1
  : > "$out/local"; : > "$out/c1"; : > "$out/c2"; : > "$out/probe"; : > "$out/open"; : > "$out/answers"
  for r in $(seq "$runs"); do
    timed local
    # Opening the dataset alone (its Delta logs read, the catalog made).
    wall "$out/open" "$bin" sql "$ds" -c "SELECT 1" >/dev/null
    start_cluster 1 2
    timed c1 --cluster "$url"
    rm -rf "$out/logs-c1-$r"; cp -r "$logs" "$out/logs-c1-$r"
    stop_cluster
    start_cluster 2 1
    timed c2 --cluster "$url"
    rm -rf "$out/logs-c2-$r"; cp -r "$logs" "$out/logs-c2-$r"
    # The probe alone: open the dataset, connect, one trivial job.
    wall "$out/probe" "$bin" sql "$ds" --cluster "$url" -c "SELECT 1" >/dev/null
    stop_cluster
  done
  # Endpoints and counts must be identical. The percentiles are
  # DataFusion's t-digest (approx_percentile_cont), whose estimate depends
  # on the order partial digests are merged in: it differs from run to
  # run even locally (docs/scale.md), so they are reported, not compared.
  for run in c1 c2; do
    cmp -s <(cut -d, -f1,2 "$out/local.csv") <(cut -d, -f1,2 "$out/$run.csv") \
      || { echo "the cluster's counts differ from the local ones" >&2; diff "$out/local.csv" "$out/$run.csv" | head >&2; exit 1; }
  done
  local calls; calls=$("$bin" sql "$ds" --format csv -c "SELECT count(*) FROM calls" | tail -1)
  local files; files=$(find "$ds/api_calls" -name '*.parquet' | wc -l)
  echo "### $shape: $calls calls in $files api_calls files ($(du -sh "$ds/api_calls" | cut -f1) of api_calls, $(du -sh "$ds" | cut -f1) in all)"
  echo
  echo "| run | median wall s (of $runs) | runs |"
  echo "|---|---|---|"
  echo "| local, 2 threads | $(median < "$out/local") | $(tr '\n' ' ' < "$out/local") |"
  echo "| cluster, 1 executor x 2 slots | $(median < "$out/c1") | $(tr '\n' ' ' < "$out/c1") |"
  echo "| cluster, 2 executors x 1 slot | $(median < "$out/c2") | $(tr '\n' ' ' < "$out/c2") |"
  echo "| opening the dataset alone (\`SELECT 1\`, local) | $(median < "$out/open") | $(tr '\n' ' ' < "$out/open") |"
  echo "| opening and the cluster's probe (\`SELECT 1 --cluster\`) | $(median < "$out/probe") | $(tr '\n' ' ' < "$out/probe") |"
  echo
  echo "Where the cluster's time went (each run's query job: per stage, tasks / summed task ms / longest task;"
  echo "Ballista binds as many of a stage's partitions to one task as the executor has free slots):"
  echo
  echo '```'
  for r in $(seq "$runs"); do
    echo "1 executor x 2 slots, run $r:"; breakdown "$out/logs-c1-$r"
    echo "2 executors x 1 slot, run $r:"; breakdown "$out/logs-c2-$r"
  done
  echo '```'
  echo
  echo "Answers: calls per endpoint (identical in every run), and each endpoint's p50 and p99 estimates, lowest-highest over the runs of each kind (the 8 endpoints with most calls):"
  echo
  python3 - "$out/answers" <<'EOF'
import csv, sys, collections
rows = collections.defaultdict(lambda: collections.defaultdict(list))
calls = {}
for label, endpoint, n, p50, p99 in csv.reader(open(sys.argv[1])):
    calls[endpoint] = int(n)
    rows[endpoint][label].append((float(p50), float(p99)))
print("| endpoint | calls | " + " | ".join(f"{k} p50 | {k} p99" for k in ("local", "c1", "c2")) + " |")
print("|---|---|" + "---|" * 6)
span = lambda xs: f"{min(xs):.4f}-{max(xs):.4f}" if min(xs) != max(xs) else f"{xs[0]:.4f}"
for endpoint in sorted(calls, key=lambda e: -calls[e])[:8]:
    cells = []
    for k in ("local", "c1", "c2"):
        v = rows[endpoint][k]
        cells += [span([a for a, _ in v]), span([b for _, b in v])]
    print(f"| {endpoint} | {calls[endpoint]:,} | " + " | ".join(cells) + " |")
EOF
}

ds=benches/data/cluster-$nodes.ds
dataset "$api" "$nodes" "$ds"
echo "## Grouped p50/p99 by endpoint, request-dense ($nodes nodes)"
run_shape request-dense
ds=benches/data/cluster-bulk-30.ds
dataset "$bulk" 30 "$ds"
echo "## Grouped p50/p99 by endpoint, bulk (30 nodes)"
run_shape bulk
