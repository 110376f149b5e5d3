#!/usr/bin/env bash
# Builds netlens against the CUDA LibTorch of the machine's pip torch and checks it on the GPU:
# featurevis timings (bench), the unit and CLI tests (device auto = CUDA), in that order, each
# step under a time limit. Needs the prefix of tools/cuda/prefix.sh (made on Debian) and a folder
# with the shared models. Logs go to LOGS; further arguments go to cmake. Usage:
#   tools/cuda/check.sh PREFIX.tar.xz SHARED_MODELS_DIR LOGS [-DSOME_CMAKE_OPTION=... ...]
set -uo pipefail
cd "$(dirname "$0")/../.."
PREFIX_TAR=$1 SHARED=$(cd "$2" && pwd) LOGS=$3
shift 3
mkdir -p "$LOGS" /tmp/netlens-prefix
exec > >(tee "$LOGS/check.txt") 2>&1
T0=$(date +%s); step() { echo "=== [$(( $(date +%s) - T0 ))s] $*"; }
step environment
nvidia-smi -L; g++ --version | head -1; cmake --version | head -1; grep PRETTY /etc/os-release
python3 -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda)'
tar -C /tmp/netlens-prefix -xJf "$PREFIX_TAR"
D=/tmp/netlens-prefix/usr/lib/x86_64-linux-gnu
export PATH=/usr/local/cuda/bin:$PATH
step configure
cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DNETLENS_BLAS_DIR= -DNETLENS_BUILD_TESTS=ON \
  -DNETLENS_SHARED_MODELS="$SHARED" -DCMAKE_GTEST_DISCOVER_TESTS_DISCOVERY_MODE=PRE_TEST \
  "-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,$D -Wl,-rpath,$D -Wl,--disable-new-dtags" \
  "-DCMAKE_SHARED_LINKER_FLAGS=-Wl,-rpath-link,$D -Wl,-rpath,$D -Wl,--disable-new-dtags" \
  "-DCMAKE_PREFIX_PATH=/tmp/netlens-prefix/usr;$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')" \
  "$@" > "$LOGS/configure.txt" 2>&1 || { tail -30 "$LOGS/configure.txt"; exit 1; }
grep "netlens:" "$LOGS/configure.txt"  # e.g. LibTorch exporting std::filesystem (docs/testing.md)
step build
timeout 400 ninja -C build-cuda -k 0 netlens netlens_unit_tests netlens_cli_tests > "$LOGS/build.txt" 2>&1
echo "build: exit $?"; grep -E "error:|FAILED" "$LOGS/build.txt" | head -30
[ -x build-cuda/netlens ] || exit 1
# libstdc++ first where LibTorch exports std::filesystem (the engine links LibTorch; the small
# netlens executable loads libstdc++ before it anyway)
readelf -d build-cuda/libnetlens_engine.so | grep -m1 NEEDED
step bench featurevis
timeout 90 build-cuda/netlens bench --model "$SHARED/squeezenet1_0.pt" --image "$SHARED/images/cat.png" --only featurevis \
  --featurevis-layer features.12 --repeat 5 --device cuda 2>&1 | grep "^|"
export NETLENS_SHARED_MODELS=$SHARED
for t in unit cli; do
  step "$t tests"
  timeout 150 build-cuda/tests/netlens_${t}_tests > "$LOGS/$t.txt" 2>&1
  echo "$t tests: exit $?, $(grep -c '^\[       OK' "$LOGS/$t.txt") passed"; grep "^\[  FAILED" "$LOGS/$t.txt" | sort -u
done
step done
