# Sourced by tools/build.sh, sanitize.sh and fuzz.sh: one compiler cache under the netlens cache
# folder, shared by every build directory (objects differ by flags, so nothing is mixed up).
CACHE_ROOT=${NETLENS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/netlens}
export CCACHE_DIR=${CCACHE_DIR:-$CACHE_ROOT/ccache}
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
