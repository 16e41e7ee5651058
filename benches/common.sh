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
