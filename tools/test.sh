#!/usr/bin/env bash
# The README's test command: installs dependencies, exports (or reuses cached) torchvision test
# models, builds everything, fuzzes the input readers, runs the whole GoogleTest suite through
# CTest, then the unit and CLI tests under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
CACHE_ROOT=${NETLENS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/netlens}
SHARED=${NETLENS_SHARED_MODELS:-$(cd .. && pwd)/shared/models}

# Random-weight torchvision exports, cached by the exporter's content hash.
key=$(sha256sum tools/export_test_models.py | cut -c1-16)
models="$CACHE_ROOT/test_models/$key"
if [ ! -f "$models/.complete" ]; then
  echo "test.sh: exporting torchvision test models to $models"
  rm -rf "$models.partial" && mkdir -p "$models.partial"
  /usr/bin/python3 tools/export_test_models.py "$models.partial"
  touch "$models.partial/.complete"
  rm -rf "$models" && mv "$models.partial" "$models"
fi

bash tools/build.sh -DNETLENS_BUILD_TESTS=ON -DNETLENS_TEST_MODELS="$models" \
  -DNETLENS_SHARED_MODELS="$SHARED"
# Fuzz the task-file reader and image decoding: a fixed number of inputs from a fixed seed.
bash tools/fuzz.sh
# One test per core, each on one CPU thread: LibTorch's OpenMP threads wait for each other at
# every operator, and with two tests of two threads on two cores each wait became a time slice
# (a 4 ms ResNet-20 forward took 250 ms; ctest took 19 minutes). netlens' --threads 0 reads
# OMP_NUM_THREADS as LibTorch does.
(cd build && OMP_NUM_THREADS=1 NETLENS_REQUIRE_TEST_MODELS=1 ctest -j"$(nproc)" --output-on-failure "$@") 2>&1 |
  tee build/ctest.log
# The unit and CLI tests again, built with AddressSanitizer + UBSan into build-asan/ (ccache
# shared; docs/testing.md). NETLENS_SKIP_SANITIZE=1 skips it for a quick local run.
if [ "${NETLENS_SKIP_SANITIZE:-0}" != 1 ]; then
  bash tools/sanitize.sh -DNETLENS_SHARED_MODELS="$SHARED" -DNETLENS_TEST_MODELS="$models"
fi
# The slowest tests of the ctest run, so that the next test that makes the command slower is seen.
echo "test.sh: the 10 slowest tests (seconds, ctest -j$(nproc)):"
grep -E "Test +#[0-9]+: " build/ctest.log | sed -E 's/.*Test +#[0-9]+: ([^ ]+) .* ([0-9.]+) sec.*/\2 \1/' |
  sort -rn | head -n 10 | awk '{printf "  %8.1f  %s\n", $1, $2}'
