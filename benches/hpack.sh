#!/usr/bin/env bash
# HPACK decoding speed: trawl's decoder against loona-hpack decoding whole
# blocks with its own Huffman decoder (analyze/proto/benches/hpack.rs).
# Prints a Markdown table.
#
#   benches/hpack.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --quiet -p trawl-proto --bench hpack 2>/dev/null
