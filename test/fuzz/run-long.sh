#!/usr/bin/env bash
# test/fuzz/run-long.sh — longer fuzzing runs than CI's (which gives each target 60 s).
#
#   bash test/fuzz/run-long.sh [seconds per target, default 3600] [target ...]
#
# Builds the targets in build-fuzz/ (clang with libFuzzer, see test/fuzz/CMakeLists.txt), then
# runs each for the given time with one libFuzzer worker per CPU core (-fork), growing its corpus
# in build-fuzz/corpus/<target>/. Crashes land in build-fuzz/artifacts/; for each: reproduce with
# `build-fuzz/<target> <file>`, fix the parser, copy the input into test/fuzz/corpus/<target>/ and
# add a case to test/native/test-formats.cpp. Prints executions per target at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."

SECONDS_PER_TARGET=${1:-3600}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(fuzz-json fuzz-safetensors fuzz-index fuzz-config)
WORKERS=${MOTIF_FUZZ_WORKERS:-$(nproc)}
GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)

CXX=clang++ cmake -S test/fuzz -B build-fuzz "${GENERATOR[@]}" -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build build-fuzz -j "$WORKERS"
mkdir -p build-fuzz/artifacts

status=0
for t in "${TARGETS[@]}"; do
  mkdir -p "build-fuzz/corpus/$t"
  marker=$(mktemp)
  echo "run-long: $t for ${SECONDS_PER_TARGET}s with $WORKERS workers"
  if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "build-fuzz/$t" "build-fuzz/corpus/$t" "test/fuzz/corpus/$t" -dict=test/fuzz/json.dict \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -fork="$WORKERS" -ignore_crashes=1 -artifact_prefix="build-fuzz/artifacts/$t-" >"build-fuzz/$t.long.log" 2>&1; then
    status=1
  fi
  # -fork prints "#<executions>: cov: ... oom/timeout/crash: a/b/c" lines; the last one is the total.
  last=$(grep -E '^#[0-9]+: ' "build-fuzz/$t.long.log" | tail -n 1 || true)
  execs=${last%%:*}
  found=$(find build-fuzz/artifacts -newer "$marker" -name "$t-*" | wc -l)
  rm -f "$marker"
  echo "run-long: $t: ${execs#\#} executions, $found new crash/oom/timeout/leak inputs in build-fuzz/artifacts/"
  [ "$found" -eq 0 ] || status=1
done
exit $status
