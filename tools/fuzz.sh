#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, with ASan + UBSan) into build-fuzz/ and runs each for
# FUZZ_SECONDS (default 30): the task-file reader (YAML and JSON) and image decoding +
# preprocessing. Seeds come from configs/ and assets/; inputs that once crashed live in
# tests/fuzz/regressions/ and are replayed first. A crash writes its input to build-fuzz/crashes/
# and fails the run: add that file to tests/fuzz/regressions/<target>/ with the fix.
# By default each target runs FUZZ_RUNS (100000) inputs from a fixed seed, so the same commit
# explores the same inputs every time (CI cannot fail on a lucky draw); FUZZ_SECONDS=N instead
# runs N seconds from a random seed, e.g. FUZZ_SECONDS=3600 bash tools/fuzz.sh (docs/testing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${FUZZ_SECONDS:-}" ]; then
  budget=(-max_total_time="$FUZZ_SECONDS")
  what="${FUZZ_SECONDS}s per target"
else
  budget=(-runs="${FUZZ_RUNS:-100000}" -seed=1)
  what="${FUZZ_RUNS:-100000} runs per target, seed 1"
fi
source tools/ccache_env.sh
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Fuzz \
  -DCMAKE_CXX_FLAGS_FUZZ="-O1 -g1" -DNETLENS_FUZZ=ON -DNETLENS_PCH=OFF -DNETLENS_BUILD_TESTS=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_task_file fuzz_image

seeds=build-fuzz/seeds
rm -rf "$seeds" && mkdir -p "$seeds/task_file" "$seeds/image" build-fuzz/crashes
# The harness reads the first byte: odd = JSON, even = YAML.
for f in configs/*; do
  case "$f" in
    *.json) { printf '\001'; cat "$f"; } > "$seeds/task_file/$(basename "$f")" ;;
    *) { printf '\000'; cat "$f"; } > "$seeds/task_file/$(basename "$f")" ;;
  esac
done
# Four bytes of settings (input size, crop_pct, policy and channels), then the file.
i=0
for f in $(find assets -name '*.png' -o -name '*.jpg' | sort); do
  { printf "\\$(printf '%03o' $((i * 7 % 64)))\\$(printf '%03o' $((i * 11 % 64)))\\040\\$(printf '%03o' $((i % 6)))"; cat "$f"; } \
    > "$seeds/image/$i"
  i=$((i + 1))
done

export ASAN_OPTIONS=detect_leaks=0:detect_container_overflow=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for target in task_file image; do
  bin=build-fuzz/tests/fuzz/fuzz_$target
  regressions=tests/fuzz/regressions/$target
  # A crash file of an earlier run (fixed since, its input kept in the regressions) is not this
  # run's; a regression that crashes again leaves one here and fails the run below.
  rm -f build-fuzz/crashes/$target-*
  mkdir -p build-fuzz/crashes
  if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
    "$bin" -runs=0 -artifact_prefix=build-fuzz/crashes/$target- "$regressions"/* 2>&1 | tail -n 2 || true
  fi
  # A seeded run starts from the seeds alone, as in CI; a timed run grows the kept corpus.
  [ -n "${FUZZ_SECONDS:-}" ] || rm -rf "build-fuzz/corpus/$target"
  mkdir -p "build-fuzz/corpus/$target"
  echo "fuzz.sh: fuzz_$target, $what"
  "$bin" "${budget[@]}" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix=build-fuzz/crashes/$target- -print_final_stats=1 \
    "build-fuzz/corpus/$target" "$seeds/$target" 2>&1 | grep -E "^(#[0-9]+ *DONE|Done|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)" || true
  if [ -n "$(ls build-fuzz/crashes/$target-* 2>/dev/null)" ]; then
    echo "fuzz.sh: fuzz_$target found a crash: $(ls build-fuzz/crashes/$target-*)"
    exit 1
  fi
done
echo "fuzz.sh: no crash in $what"
