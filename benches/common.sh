# Sourced by the benchmark scripts: the capture and the release binary.
#
#   bench_setup CAPTURE [DEFAULT MAKER SIZE_MB]
#       sets $cap (CAPTURE, else DEFAULT, recorded first by MAKER when
#       missing; by default benches/data/http-1g.pcap from
#       make_http_capture.sh) and $bin (built in release).
bench_setup() {
  cap=${1:-${2:-benches/data/http-1g.pcap}}
  if [ ! -f "$cap" ]; then
    mkdir -p "$(dirname "$cap")"
    "${3:-benches/make_http_capture.sh}" "$cap" "${4:-1024}"
  fi
  # Release builds carry the query cluster (`--features cluster`).
  cargo build --release --quiet --features cluster
  bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/trawl")
}

# both_shapes: the two traffic shapes of the dataset and cluster
# benchmarks, recorded when missing: sets $api (request-dense,
# benches/data/api-150m.pcap) and $bulk (benches/data/http-300m.pcap),
# and $bin.
both_shapes() {
  bench_setup benches/data/api-150m.pcap benches/data/api-150m.pcap benches/make_api_capture.sh 150
  api=$cap
  bench_setup benches/data/http-300m.pcap benches/data/http-300m.pcap benches/make_http_capture.sh 300
  bulk=$cap
}

# measure LABEL COMMAND...: runs COMMAND under GNU time and prints
# "LABEL wall_s cpu_s peak_rss_kb" (needs $out, a scratch folder).
measure() {
  local label=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$out/time" "$@" >/dev/null 2>"$out/err" || { cat "$out/err" >&2; return 1; }
  read -r wall user sys rss < "$out/time"
  echo "$label $wall $(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }') $rss"
}

# summarize: reads `measure` lines on stdin and prints, per label in the
# order first seen, "LABEL runs median_wall_s mean_cpu_s peak_rss_mb".
summarize() {
  awk '
    { n[$1]++; wall[$1, n[$1]] = $2; cpu[$1] += $3; if ($4 > rss[$1]) rss[$1] = $4; if (n[$1] == 1) order[++k] = $1 }
    END {
      for (j = 1; j <= k; j++) {
        l = order[j]; m = n[l]
        for (a = 1; a <= m; a++) w[a] = wall[l, a]
        for (a = 1; a <= m; a++) for (b = a + 1; b <= m; b++) if (w[b] < w[a]) { x = w[a]; w[a] = w[b]; w[b] = x }
        med = (m % 2) ? w[(m + 1) / 2] : (w[m / 2] + w[m / 2 + 1]) / 2
        printf "%s %d %.3f %.3f %.0f\n", l, m, med, cpu[l] / m, rss[l] / 1024
      }
    }'
}

# median: the median of the numbers on stdin, one a line.
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# rotate CAPTURE DIR N: cut CAPTURE into N files named as trawl capture
# names them (sorting by time), left in $out as node-a-NNNN.pcap (needs
# $out, a scratch folder).
rotate() {
  local frames per
  frames=$(capinfos -Mc "$1" | awk '/Number of packets/ { print $NF }')
  per=$(( (frames + $3 - 1) / $3 ))
  mkdir -p "$out/split" "$2"
  rm -f "$out/split"/*
  editcap -c "$per" "$1" "$out/split/x.pcap"
  local i=0
  for f in $(ls "$out/split" | sort); do
    mv "$out/split/$f" "$out/node-a-$(printf %04d $i).pcap"
    i=$((i + 1))
  done
}

