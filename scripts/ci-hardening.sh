#!/usr/bin/env bash
# scripts/ci-hardening.sh — the sanitizer and fuzzing step of CI (.ci/run calls it; issue 8).
#
#   1. build-asan/: the engine library and its C++ tests built without Node under AddressSanitizer
#      + UndefinedBehaviorSanitizer (-DMOTIF_SANITIZE=ON: g++'s runtimes, -fno-sanitize-recover),
#      run by ctest with LeakSanitizer on.
#   2. build-asan-addon/: the N-API addon built the same way (cmake-js), and the addon tests
#      (test/addon/*.test.ts) run once on it: MOTIF_ADDON_PATH makes lib/native/binding.ts load it,
#      and g++'s libasan is LD_PRELOADed into node (the ASan runtime must be loaded first).
#   3. build-fuzz/: the libFuzzer targets of test/fuzz/ (clang, -fsanitize=fuzzer,address,undefined),
#      each run for MOTIF_FUZZ_SECONDS (default 60) from its seed corpus in test/fuzz/corpus/;
#      a crash leaves its input in build-fuzz/artifacts/.
#   4. the TypeScript mutation fuzzers of test/fuzz/js/ (PEFT adapter reader, GGUF writer round
#      trip; libFuzzer cannot reach TS), MOTIF_JS_FUZZ_SECONDS (default 30) each, executions printed.
#
# Any sanitizer report or fuzzing crash fails the step (the one exception: a test marked TODO for
# a known finding, see step 2). There are no suppressions. The fuzzers run one at a time beside
# the addon tests, which leave about one of two cores idle on average, so the whole step takes
# about as long as steps 1 and 2 alone: 7.5-9 minutes on 2 cores (bench/RELIABILITY.md).
#
# Needs cmake, g++, clang with libFuzzer (Debian 12: clang libclang-rt-14-dev) and the npm
# dependencies (cmake-js, tsx).
#
#   bash scripts/ci-hardening.sh                                # everything
#   MOTIF_FUZZ_SECONDS=10 bash scripts/ci-hardening.sh          # shorter fuzzing
#   MOTIF_HARDENING_STEPS="asan fuzz" bash scripts/ci-hardening.sh   # a subset of: asan addon fuzz jsfuzz
# Longer fuzzing runs: test/fuzz/run-long.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

JOBS=${MOTIF_HARDENING_JOBS:-2}
FUZZ_SECONDS=${MOTIF_FUZZ_SECONDS:-60}
STEPS=${MOTIF_HARDENING_STEPS:-asan addon fuzz jsfuzz}
JS_FUZZ_SECONDS=${MOTIF_JS_FUZZ_SECONDS:-30}
FUZZ_TARGETS=(fuzz-json fuzz-safetensors fuzz-index fuzz-config)
GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)
# g++ for the sanitized engine builds: step 2 preloads g++'s libasan, which must match the addon's.
export CXX=${CXX:-g++}

# Every report is fatal to the process that hits it; LeakSanitizer is on for our own processes.
ASAN_STRICT=detect_leaks=1:abort_on_error=1
UBSAN_STRICT=print_stacktrace=1:halt_on_error=1

t0=$SECONDS
step() { echo "ci-hardening: [$((SECONDS - t0))s] $*"; }
want() { [[ " $STEPS " == *" $1 "* ]]; }
# The background fuzzing job and its fuzzer processes are ours: stop them if this script fails
# before it waits for them.
FUZZ_PID=
stop_fuzzers() {
  [ -n "$FUZZ_PID" ] || return 0
  pkill -TERM -P "$FUZZ_PID" 2>/dev/null || true
  kill "$FUZZ_PID" 2>/dev/null || true
}
trap stop_fuzzers EXIT

# --- 1. C++ tests under ASan + UBSan + LSan ---------------------------------------------------
if want asan; then
  step "building the engine and C++ tests with -DMOTIF_SANITIZE=ON in build-asan/"
  cmake -S . -B build-asan "${GENERATOR[@]}" -DMOTIF_SANITIZE=ON -DMOTIF_CUDA=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build-asan -j "$JOBS"
  step "ctest under ASan/UBSan/LSan"
  ASAN_OPTIONS=$ASAN_STRICT UBSAN_OPTIONS=$UBSAN_STRICT ctest --test-dir build-asan -j "$JOBS" --output-on-failure
fi

# --- builds for steps 2 and 3 -------------------------------------------------------------------
if want addon; then
  step "building the addon with MOTIF_SANITIZE=ON in build-asan-addon/"
  node node_modules/cmake-js/bin/cmake-js build --out build-asan-addon -B RelWithDebInfo -p "$JOBS" \
    --CDMOTIF_SANITIZE=ON --CDMOTIF_CUDA=OFF --CDMOTIF_BUILD_TESTS=OFF
  # -print -quit rather than `| head -n 1`: under pipefail, find killed by SIGPIPE fails the step.
  ADDON=$(find "$ROOT/build-asan-addon" -name motif_native.node -type f -print -quit)
  [ -n "$ADDON" ] || {
    echo "ci-hardening: no motif_native.node under build-asan-addon/" >&2
    exit 1
  }
  LIBASAN=$(g++ -print-file-name=libasan.so)
  [ -e "$LIBASAN" ] || {
    echo "ci-hardening: g++ has no libasan.so (Debian: libgcc-12-dev)" >&2
    exit 1
  }
  # ldd's output is captured before grep reads it: `ldd | grep -q` under pipefail fails whenever
  # grep exits at its match while ldd is still writing (SIGPIPE), which is a race, not a finding.
  ADDON_DEPS=$(ldd "$ADDON" 2>&1) || {
    echo "ci-hardening: ldd $ADDON failed:" >&2
    echo "$ADDON_DEPS" >&2
    exit 1
  }
  if ! grep -q 'libasan\.so' <<<"$ADDON_DEPS"; then
    echo "ci-hardening: $ADDON does not use g++'s shared libasan (built with another compiler?); ldd says:" >&2
    echo "$ADDON_DEPS" >&2
    exit 1
  fi
fi
if want fuzz; then
  command -v clang++ >/dev/null || {
    echo "ci-hardening: clang++ not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2
    exit 1
  }
  step "building the fuzzers in build-fuzz/"
  CXX=clang++ cmake -S test/fuzz -B build-fuzz "${GENERATOR[@]}" -DCMAKE_CXX_COMPILER=clang++ >/dev/null
  cmake --build build-fuzz -j "$JOBS"
  mkdir -p build-fuzz/artifacts
fi

# --- 3. fuzzing (in the background when the addon tests run too) --------------------------------
# Run in a background subshell: exec makes the subshell's pid the fuzzer's own.
run_fuzzer() {
  local t=$1
  mkdir -p "build-fuzz/corpus/$t"
  export ASAN_OPTIONS=$ASAN_STRICT UBSAN_OPTIONS=$UBSAN_STRICT
  # New inputs go to build-fuzz/corpus/ (the first folder); test/fuzz/corpus/ holds the seeds.
  exec "build-fuzz/$t" "build-fuzz/corpus/$t" "test/fuzz/corpus/$t" -dict=test/fuzz/json.dict \
    -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="build-fuzz/artifacts/$t-" >"build-fuzz/$t.log" 2>&1
}
# Runs every target, `parallel` at a time; writes the failed ones to build-fuzz/failed.
run_fuzzers() {
  local parallel=$1 t
  local -A pids=()
  : >build-fuzz/failed
  for t in "${FUZZ_TARGETS[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do sleep 1; done
    run_fuzzer "$t" &
    pids[$t]=$!
  done
  for t in "${FUZZ_TARGETS[@]}"; do
    wait "${pids[$t]}" || echo "$t" >>build-fuzz/failed
  done
}
report_fuzzers() {
  local t runs speed
  printf '%-18s %12s %10s %8s\n' target executions exec/s corpus
  for t in "${FUZZ_TARGETS[@]}"; do
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "build-fuzz/$t.log")
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "build-fuzz/$t.log")
    printf '%-18s %12s %10s %8s\n' "$t" "${runs:-?}" "${speed:-?}" "$(find "build-fuzz/corpus/$t" -type f | wc -l)"
  done
  if [ -s build-fuzz/failed ]; then
    while read -r t; do
      echo "ci-hardening: $t found a crash:" >&2
      grep -E 'ERROR|SUMMARY|invariant|unexpected|Test unit written' "build-fuzz/$t.log" >&2 || tail -n 40 "build-fuzz/$t.log" >&2
    done <build-fuzz/failed
    echo "ci-hardening: reproduce with build-fuzz/<target> build-fuzz/artifacts/<file>; after the fix, add the" >&2
    echo "  input to test/fuzz/corpus/<target>/ and a case to test/native/test-formats.cpp" >&2
    return 1
  fi
}
if want fuzz; then
  if want addon; then
    step "fuzzing each target for ${FUZZ_SECONDS}s, one at a time, beside the addon tests"
    run_fuzzers 1 &
    FUZZ_PID=$!
  else
    step "fuzzing each target for ${FUZZ_SECONDS}s, $JOBS at a time"
    run_fuzzers "$JOBS"
  fi
fi

# --- 2. the addon tests on the sanitized addon ---------------------------------------------------
if want addon; then
  # PyTorch, the independent reference that some addon tests run in a python3 subprocess, is not
  # our code and would inherit LD_PRELOAD: it runs without the sanitizer runtime (under it, it is
  # also several times slower).
  PY_WRAPPER=$ROOT/build-asan-addon/python3-unsanitized
  printf '#!/bin/sh\n# written by scripts/ci-hardening.sh: the PyTorch reference without ASan\nunset LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS\nexec %s "$@"\n' \
    "${MOTIF_TORCH_PYTHON:-/usr/bin/python3}" >"$PY_WRAPPER"
  chmod +x "$PY_WRAPPER"
  # detect_leaks=0 for node only: at exit LeakSanitizer would report V8's and Node's own
  # never-freed allocations (isolate, platform, code space), which are not ours; the engine's own
  # leaks are checked by step 1 (C++ tests) and the fuzzers. Every other report still aborts.
  NODE_ASAN=detect_leaks=0:abort_on_error=1
  step "checking that node runs the sanitized addon"
  LD_PRELOAD=$LIBASAN ASAN_OPTIONS=$NODE_ASAN MOTIF_ADDON_PATH=$ADDON node -e '
    require(process.env.MOTIF_ADDON_PATH);
    const maps = require("fs").readFileSync("/proc/self/maps", "utf8");
    if (!maps.includes("libasan") || !maps.includes(process.env.MOTIF_ADDON_PATH)) {
      console.error("ci-hardening: node did not map libasan and the sanitized addon");
      process.exit(1);
    }'
  step "addon tests (test/addon/*.test.ts) under ASan/UBSan with $ADDON"
  # abort_on_error=1 / halt_on_error=1 make a report fatal to the process that hits it, and every
  # process here has its exit status checked (node --test runs each file in a child process; the
  # GC cases of misuse.test.ts check theirs). A test marked `# TODO` for a known finding
  # (bench/RELIABILITY.md) may fail without failing the run; its report is then in the log.
  if ! LD_PRELOAD=$LIBASAN ASAN_OPTIONS=$NODE_ASAN UBSAN_OPTIONS=$UBSAN_STRICT MOTIF_ADDON_PATH=$ADDON \
    MOTIF_TORCH_PYTHON=$PY_WRAPPER node --import tsx --test test/addon/*.test.ts >build-asan-addon/addon-tests.log 2>&1; then
    tail -n 200 build-asan-addon/addon-tests.log
    echo "ci-hardening: the addon tests failed under the sanitizer (full log: build-asan-addon/addon-tests.log)" >&2
    exit 1
  fi
  echo "ci-hardening: addon tests: $(grep -E '^# (tests|pass|fail|todo) ' build-asan-addon/addon-tests.log | tr '\n' ' ')"
fi

if want fuzz; then
  if [ -n "$FUZZ_PID" ]; then
    step "waiting for the fuzzers"
    wait "$FUZZ_PID"
    FUZZ_PID=
  fi
  report_fuzzers
fi

# --- 4. the TypeScript fuzzers (test/fuzz/js: PEFT adapter reader, GGUF writer round trip) ------
if want jsfuzz; then
  step "TypeScript fuzzers, ${JS_FUZZ_SECONDS}s each"
  js_failed=0
  for t in fuzz-peft fuzz-gguf; do
    # prints "<target>: N executions in S s (seed X), A accepted, F findings"; exits 1 on a finding
    node --import tsx "test/fuzz/js/$t.ts" --seconds "$JS_FUZZ_SECONDS" --findings "build-fuzz/js-findings/$t" || js_failed=1
  done
  if [ "$js_failed" != 0 ]; then
    echo "ci-hardening: a TypeScript fuzzer found a problem; its inputs are in build-fuzz/js-findings/ (replay" >&2
    echo "  with the printed seed: node --import tsx test/fuzz/js/<target>.ts --seed X --seconds S)" >&2
    exit 1
  fi
fi

step "done: no sanitizer reports, no fuzzing crashes"
