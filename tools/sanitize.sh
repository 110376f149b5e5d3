#!/usr/bin/env bash
# Builds netlens, the unit tests and the CLI tests with AddressSanitizer and
# UndefinedBehaviorSanitizer (gcc) into build-asan/ and runs them. Any sanitizer report fails the
# run. ccache shares compiled objects across runs (not with build/: the flags differ).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/ccache_env.sh
# -O1 -g1: fast enough to build and to run, with line numbers in reports.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Sanitize -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -g1" \
  -DNETLENS_SANITIZE=ON -DNETLENS_BUILD_TESTS=ON "$@" >/dev/null
cmake --build build-asan -j"$(nproc)" --target netlens netlens_unit_tests netlens_cli_tests
# LibTorch and OpenCV are not instrumented: std containers they fill look overflowed to ASan
# (container-overflow) and their process-lifetime registries look leaked. Both are turned off;
# every other check (heap/stack/global overflow, use-after-free, double free, UB) is on.
export ASAN_OPTIONS=detect_leaks=0:detect_container_overflow=0:halt_on_error=1:abort_on_error=0:exitcode=86
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd build-asan
# CUDA cannot run under ASan's address-space layout; the sanitizer run is CPU-only. The unit
# tests and the CLI tests in two shards (gtest's own sharding) run side by side, one CPU thread
# each: the CLI tests alone take about four minutes under ASan (as ctest in tools/test.sh).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
NETLENS_REQUIRE_TEST_MODELS=0 tests/netlens_unit_tests --gtest_brief=1 > unit_tests.log 2>&1 &
pids=($!)
names=(unit_tests)
for shard in 0 1; do
  GTEST_TOTAL_SHARDS=2 GTEST_SHARD_INDEX=$shard tests/netlens_cli_tests --gtest_brief=1 > "cli_tests_$shard.log" 2>&1 &
  pids+=($!)
  names+=("cli_tests_$shard")
done
failed=()
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || failed+=("${names[$i]}")
done
# Each program's summary; the whole log (less netlens' info lines) of one that failed.
for name in "${names[@]}"; do
  echo "sanitize.sh: ${name} (build-asan/${name}.log):"
  if [[ " ${failed[*]-} " == *" $name "* ]]; then
    grep -vE '^\[[0-9:.]+\] \[(info|debug)\]' "${name}.log" || true
  else
    grep -vE '^\[[0-9:.]+\] \[(info|debug)\]' "${name}.log" | tail -n 12 || true
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "sanitize.sh: FAILED under AddressSanitizer + UBSan: ${failed[*]}"
  exit 1
fi
echo "sanitize.sh: unit and CLI tests passed under AddressSanitizer + UBSan"
