# Sourced by the benchmark scripts: the capture and the release binary.
#
#   bench_setup CAPTURE   sets $cap (recorded first by make_http_capture.sh
#                         when missing) and $bin (built in release).
bench_setup() {
  cap=${1:-benches/data/http-1g.pcap}
  if [ ! -f "$cap" ]; then
    mkdir -p "$(dirname "$cap")"
    benches/make_http_capture.sh "$cap" 1024
  fi
  cargo build --release --quiet
  bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/trawl")
}

# measure LABEL COMMAND...: runs COMMAND under GNU time and prints
# "LABEL wall_s cpu_s peak_rss_kb" (needs $out, a scratch folder).
measure() {
  local label=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$out/time" "$@" >/dev/null 2>"$out/err" || { cat "$out/err" >&2; return 1; }
  read -r wall user sys rss < "$out/time"
  echo "$label $wall $(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }') $rss"
}
