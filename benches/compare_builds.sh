#!/usr/bin/env bash
# Times `trawl analyze` of two trawl binaries on the same capture, runs
# interleaved (A, B, A, B, ...) so that the machine's drift hits both, and
# prints a Markdown table: what a change costs.
#
#   benches/compare_builds.sh BIN_BEFORE [CAPTURE] [RUNS]
#
# BIN_BEFORE is a release build of the baseline (for example, the release
# binary copied aside before building the change); the other side is this
# tree's release build. Without CAPTURE, benches/data/http-1g.pcap is
# recorded first by benches/make_http_capture.sh. Needs GNU time.
set -euo pipefail
before=$(realpath "${1:?usage: compare_builds.sh BIN_BEFORE [CAPTURE] [RUNS]}")
cd "$(dirname "$0")/.."
runs=${3:-5}
. benches/common.sh
bench_setup "${2:-}"
out=$(mktemp -d /tmp/trawl-bench-out.XXXXXX)
trap 'rm -rf "$out"' EXIT
size=$(stat -c %s "$cap")
results=()
for i in $(seq "$runs"); do
  results+=("$(measure before "$before" analyze "$cap" -o "$out/snap" --force -q -j 2)")
  results+=("$(measure after "$bin" analyze "$cap" -o "$out/snap" --force -q -j 2)")
done
printf '%s\n' "${results[@]}" | summarize | awk -v size="$size" '
  BEGIN {
    printf "Capture: %.1f MB, runs interleaved\n\n", size / 1e6
    print "| build | runs | median wall (s) | MB/s (wall) | CPU s (mean) | peak RSS (MB) |"
    print "|---|---|---|---|---|---|"
  }
  { med[$1] = $3; cpu[$1] = $4; printf "| %s | %d | %.2f | %.0f | %.2f | %.0f |\n", $1, $2, $3, size / 1e6 / $3, $4, $5 }
  END { printf "\nafter / before, median wall: %+.1f%%, mean CPU: %+.1f%%\n", (med["after"] / med["before"] - 1) * 100, (cpu["after"] / cpu["before"] - 1) * 100 }'
