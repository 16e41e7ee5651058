#!/usr/bin/env bash
# Times the archive and snapshot operations on a large capture laid out as
# a one-node archive: boundaries (cold, then from the cache), a window cut,
# delayed indexing, pack and unpack. Prints a Markdown table.
#
#   benches/archive_ops.sh [CAPTURE]
#
# Without CAPTURE, benches/data/http-1g.pcap is recorded first by
# benches/make_http_capture.sh. Needs GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh
bench_setup "${1:-}"
cap=$(realpath "$cap")
work=$(mktemp -d /tmp/trawl-archive-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/archive/node-a"
ln -s "$cap" "$work/archive/node-a/capture.pcap"

row() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; return 1; }
  read -r wall rss < "$work/time"
  echo "| $label | $wall | $((rss / 1024)) |"
}

size=$(stat -L -c %s "$cap")
echo "capture: $cap ($(awk -v s="$size" 'BEGIN { printf "%.2f GB", s / 1e9 }'))"
echo
echo "| operation | wall (s) | peak RSS (MB) |"
echo "|---|---|---|"
row "archive boundaries (no cache)" "$bin" archive boundaries "$work/archive"
row "archive boundaries (cached)" "$bin" archive boundaries "$work/archive"
row "snapshot create --last 30s" "$bin" snapshot create "$work/archive" --last 30s -o "$work/w.snap"
row "snapshot create (whole archive)" "$bin" snapshot create "$work/archive" -o "$work/all.snap"
row "snapshot index (whole archive)" "$bin" snapshot index "$work/all.snap" -q
row "snapshot pack" "$bin" snapshot pack "$work/all.snap" -o "$work/all.tar.zst"
row "snapshot unpack (checksums verified)" "$bin" snapshot unpack "$work/all.tar.zst" -o "$work/back.snap"
echo
echo "window snapshot: $(du -sh "$work/w.snap" | cut -f1); whole: $(du -sh "$work/all.snap" | cut -f1); pack: $(du -h "$work/all.tar.zst" | cut -f1)"
