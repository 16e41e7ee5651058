#!/usr/bin/env bash
# The dataset's targets (docs/dataset.md, docs/performance.md), on both
# traffic shapes: request-dense (benches/data/api-150m.pcap, many small
# API calls; make_api_capture.sh) and bulk (benches/data/http-300m.pcap,
# large bodies; make_http_capture.sh), each recorded first if missing.
#
#   benches/dataset.sh [RUNS]        (default 3)
#
# 1. Indexing CPU: `trawl index` of a capture cut into 10 rotated files
#    (into a fresh dataset: table creation included), to local disk and
#    to an S3 server on 127.0.0.1 (moto), against `trawl analyze` of the
#    same files (CPU seconds, median of RUNS interleaved runs, 2
#    threads): the target is index <= analyze + 10%.
# 2. Lag: `trawl index --follow --poll 0.2` while the 10 files are renamed
#    into the archive one at a time, to a local dataset and to an S3
#    server on 127.0.0.1 (moto): seconds from each rename until a reader
#    sees the file's rows (p50 and max; the target is p99 <= 10 s).
# 3. The last five minutes of 24 hours: 24 hourly files of API traffic
#    (the first 20 MB of the request-dense capture, shifted an hour each),
#    then `list_api_calls` with `timestamp > now() - duration("5m")`
#    through the MCP client (benches/dataset_recent.py): target < 500 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh
runs=${1:-3}
both_shapes
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT

cpu_of() { /usr/bin/time -f "%U %S" -o "$out/t" "$@" >/dev/null 2>"$out/err" || { cat "$out/err" >&2; exit 1; }; awk '{ print $1 + $2 }' "$out/t"; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
until curl -sf -o /dev/null -X PUT "http://127.0.0.1:$port/bench"; do sleep 0.2; done
export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1

echo "## Indexing CPU (2 threads, median of $runs)"
echo "| shape | capture | analyze CPU s | index CPU s | index / analyze | index to S3 CPU s | S3 / analyze |"
echo "|---|---|---|---|---|---|---|"
for shape in request-dense bulk; do
  c=$([ $shape = bulk ] && echo "$bulk" || echo "$api")
  arch="$out/arch/node-a"
  rm -rf "$out/arch"; rotate "$c" "$arch" 10; mv "$out"/node-a-*.pcap "$arch/"
  # Interleaved (analyze, index, analyze, ...): this machine's speed
  # drifts by tens of percent over a minute, and runs in two blocks
  # would measure the drift.
  : > "$out/a"; : > "$out/i"; : > "$out/s"
  for run in $(seq "$runs"); do
    cpu_of "$bin" analyze "$arch" -o "$out/s.snap" --force -q -j 2 >> "$out/a"
    rm -rf "$out/ds"
    cpu_of "$bin" index "$arch" --to "$out/ds" -q -j 2 >> "$out/i"
    # The trawl process only (moto's CPU is the server's).
    cpu_of "$bin" index "$arch" --to "s3://bench/cpu-$shape-$run" -q -j 2 >> "$out/s"
  done
  a=$(median < "$out/a")
  i=$(median < "$out/i")
  s3=$(median < "$out/s")
  ratio() { awk -v a="$1" -v i="$2" 'BEGIN { printf "%.3f", i / a }'; }
  echo "| $shape | $(basename "$c") ($(du -m "$c" | cut -f1) MB) | $a | $i | $(ratio "$a" "$i") | $s3 | $(ratio "$a" "$s3") |"
done

# lag DATASET: follow an empty archive, rename the 10 files in one at a
# time; prints "p50 max" seconds until each file's rows are visible.
lag() {
  local ds=$1 arch="$out/lag/node-a"
  rm -rf "$out/lag"; mkdir -p "$arch"
  "$bin" index "$arch" --to "$ds" --follow --poll 0.2 -q -j 2 &
  local pid=$!
  local i=0
  for f in "$out"/rot/node-a-*.pcap; do
    cp "$f" "$arch/.tmp"
    local t0; t0=$(date +%s.%N)
    mv "$arch/.tmp" "$arch/$(basename "$f")"
    until [ "$("$bin" sql "$ds" --format csv -c "SELECT max(file_index) FROM packets" 2>/dev/null | tail -1)" = "$i" ]; do
      sleep 0.05
    done
    echo "$(date +%s.%N) $t0" | awk '{ printf "%.2f\n", $1 - $2 }'
    i=$((i + 1))
  done > "$out/lags"
  kill -TERM "$pid"; wait "$pid" || true
  echo "$(median < "$out/lags") $(sort -n "$out/lags" | tail -1)"
}

echo
echo "## Lag: rename to rows queryable (10 files, --poll 0.2)"
echo "| shape | dataset | p50 s | max s |"
echo "|---|---|---|---|"
for shape in request-dense bulk; do
  c=$([ $shape = bulk ] && echo "$bulk" || echo "$api")
  rm -rf "$out/rot"; mkdir -p "$out/rot"; rotate "$c" "$out/rot" 10; mv "$out"/node-a-*.pcap "$out/rot/"
  read -r p50 max < <(lag "$out/lag-ds")
  echo "| $shape | local disk | $p50 | $max |"
  rm -rf "$out/lag-ds"
  read -r p50 max < <(lag "s3://bench/lag-$shape")
  echo "| $shape | S3 (moto on 127.0.0.1) | $p50 | $max |"
done

echo
echo "## The last five minutes of 24 hours of API traffic"
day="$out/day/node-a"; mkdir -p "$day"
editcap -r "$api" "$out/slice.pcap" 1-"$(capinfos -Mc "$api" | awk '/Number of packets/ { print int($NF / 8) }')"
for h in $(seq 0 23); do
  editcap -t $(( (h - 23) * 3600 )) "$out/slice.pcap" "$day/node-a-$(printf %02d "$h").pcap"
done
"$bin" index "$day" --to "$out/day-ds" -q -j 2
echo "dataset: $("$bin" sql "$out/day-ds" --format csv -c "SELECT count(*) FROM calls" | tail -1) calls in $(find "$out/day-ds/api_calls" -name '*.parquet' | wc -l) files over 24 hours"
python3 benches/dataset_recent.py "$bin" "$out/day-ds" 20
