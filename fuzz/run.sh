#!/usr/bin/env bash
# fuzz/run.sh TARGET SECONDS: one coverage-guided libFuzzer run of TARGET
# on the machine's stable toolchain (RUSTC_BOOTSTRAP=1 lets cargo-fuzz
# pass its instrumentation flags), from the committed seeds in seeds/TARGET
# and the working corpus in corpus/TARGET (not committed), at nice 19.
# The log goes to logs/TARGET-<unix time>.log; its last lines (executions,
# coverage, corpus) are what fuzz/README.md records. Crashes land in
# artifacts/TARGET/ and become named regression tests next to the code.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh TARGET SECONDS}
secs=${2:?usage: fuzz/run.sh TARGET SECONDS}
mkdir -p "corpus/$target" "seeds/$target" logs
log="logs/$target-$(date +%s).log"
# The targets over DataFusion and the MCP server are a package of their own.
dir=.
if [ -f "query/fuzz_targets/$target.rs" ]; then dir=query; fi
RUSTC_BOOTSTRAP=1 nice -n 19 cargo fuzz run --fuzz-dir "$dir" -s none "$target" "corpus/$target" "seeds/$target" -- \
  -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || true
tail -n 12 "$log" | grep -E "Done|stat::|cov:|crash|panicked|SUMMARY" || true
echo "log: fuzz/$log"
