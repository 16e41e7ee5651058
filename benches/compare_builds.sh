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
printf '%s\n' "${results[@]}" | awk -v size="$size" '
  { n[$1]++; wall[$1, n[$1]] = $2; cpu[$1] += $3; if ($4 > rss[$1]) rss[$1] = $4 }
  END {
    printf "Capture: %.1f MB, %d runs each, interleaved\n\n", size / 1e6, n["after"]
    print "| build | median wall (s) | MB/s (wall) | CPU s (mean) | peak RSS (MB) |"
    print "|---|---|---|---|---|"
    split("before after", order, " ")
    for (k = 1; k <= 2; k++) {
      t = order[k]; m = n[t]
      for (i = 1; i <= m; i++) w[i] = wall[t, i]
      for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (w[j] < w[i]) { x = w[i]; w[i] = w[j]; w[j] = x }
      med[t] = (m % 2) ? w[(m + 1) / 2] : (w[m / 2] + w[m / 2 + 1]) / 2
      printf "| %s | %.2f | %.0f | %.2f | %.0f |\n", t, med[t], size / 1e6 / med[t], cpu[t] / m, rss[t] / 1024
    }
    printf "\nafter / before, median wall: %+.1f%%, mean CPU: %+.1f%%\n", (med["after"] / med["before"] - 1) * 100, (cpu["after"] / cpu["before"] - 1) * 100
  }'
