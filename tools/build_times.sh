#!/usr/bin/env bash
# Prints the slowest compile and link steps of the last build of a build folder (default build/),
# from ninja's own log, and their sum: so that a change that makes the build slower is seen.
#   bash tools/build_times.sh [BUILD_DIR] [N]      (N slowest steps, default 15)
# The figures are wall-clock times of each step as ninja ran them (under -jN several overlap, and
# a step that ran beside another took longer than it would alone); the sum is the build's total
# work, the span from the first step's start to the last step's end its wall-clock time. A step
# that ccache answered counts as the time it took (a fraction of a second).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
most=${2:-15}
log="$dir/.ninja_log"
[ -f "$log" ] || { echo "build_times.sh: no $log (build first: bash tools/build.sh)" >&2; exit 2; }
# Format v5: start_ms end_ms mtime output hash, one line per finished step, in the order the steps
# finished, with times from the start of that ninja run. So within one run the end times never
# decrease, and a smaller one starts the next run: only the last run's steps are listed.
awk -v most="$most" '
  /^#/ { next }
  {
    if ($2 + 0 < last_end) { delete took; delete from; delete to }  # the next ninja run
    last_end = $2 + 0
    took[$4] = $2 - $1; from[$4] = $1; to[$4] = $2
  }
  END {
    total = 0; first = -1; end = 0
    for (o in took) {
      total += took[o]
      if (first < 0 || from[o] < first) first = from[o]
      if (to[o] > end) end = to[o]
      printf "%10.1f  %s\n", took[o] / 1000, o | "sort -rn | head -n " most
    }
    close("sort -rn | head -n " most)
    printf "%10.1f  total of %d steps (wall clock %.1f s)\n", total / 1000, length(took), (end - first) / 1000
  }' "$log"
