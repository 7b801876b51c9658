#!/usr/bin/env bash
# Runs every fuzz target for a short, bounded time over its committed corpus
# (CTest's fuzz_smoke test). A crash fails the run and leaves the input in
# fuzz/artifacts/<target>/. Needs cargo-fuzz; the toolchain may be stable,
# since RUSTC_BOOTSTRAP lets cargo-fuzz use its sanitizer flags.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
export RUSTC_BOOTSTRAP=1
log=$(mktemp)
# New inputs go to a scratch directory (libFuzzer writes into the first corpus
# directory), so a test run leaves the committed corpus untouched.
scratch=$(mktemp -d)
trap 'rm -rf "$log" "$scratch"' EXIT
failed=0
targets="decoder uri headers session sdp cpim xml"
for target in $targets; do
  mkdir -p "fuzz/corpus/$target" "$scratch/$target"
  cargo fuzz run -O "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 >"$log" 2>&1
  status=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  if [ "$status" -eq 0 ]; then
    echo "fuzz_smoke: $target: ${runs} executions in ${seconds}s, no crash"
  else
    echo "fuzz_smoke: $target FAILED (exit $status); the end of its log:"
    tail -40 "$log"
    failed=$((failed + 1))
  fi
done
echo "fuzz_smoke: $(($(echo $targets | wc -w) - failed)) passed, $failed failed"
test "$failed" -eq 0
