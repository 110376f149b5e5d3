#!/usr/bin/env bash
# Configures and builds netlens into build/ (ccache and precompiled LibTorch headers keep
# rebuilds fast). Extra arguments go to cmake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE_ROOT=${NETLENS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/netlens}
export CCACHE_DIR=${CCACHE_DIR:-$CACHE_ROOT/ccache}
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build build -j"$(nproc)" ${NETLENS_BUILD_TARGET:+--target "$NETLENS_BUILD_TARGET"}
