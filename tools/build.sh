#!/usr/bin/env bash
# Configures and builds netlens into build/ (ccache and precompiled LibTorch headers keep
# rebuilds fast). Extra arguments go to cmake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/ccache_env.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build build -j"$(nproc)" ${NETLENS_BUILD_TARGET:+--target "$NETLENS_BUILD_TARGET"}
