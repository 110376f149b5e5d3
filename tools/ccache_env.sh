# Sourced by tools/build.sh, sanitize.sh and fuzz.sh: one compiler cache under the netlens cache
# folder, shared by every build directory (objects differ by flags, so nothing is mixed up).
CACHE_ROOT=${NETLENS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/netlens}
export CCACHE_DIR=${CCACHE_DIR:-$CACHE_ROOT/ccache}
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
# CMake hands the compiler absolute paths (sources, include folders, the precompiled header), and
# with -g ccache also hashes the working folder: without these two, a clone at another path (a CI
# checkout, ../clean) misses every object and rebuilds from scratch. Paths under the checkout are
# hashed relative to it; debug info then names the folder the object was first compiled in.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(pwd)}
export CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}
