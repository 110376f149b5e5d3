#!/usr/bin/env bash
# Whole-process time of `netlens gist` against one `netlens guided` run on the same model and
# image (issue 9's goal: gist <= 3x guided). Runs each REPEAT times alternately, prints the
# medians and the ratio. Usage: tools/bench_gist.sh [MODEL] [IMAGE] [REPEAT]
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${NETLENS_SHARED_MODELS:-$(cd .. && pwd)/shared/models}
MODEL=${1:-$SHARED/squeezenet1_0.pt}
IMAGE=${2:-$SHARED/images/cat.png}
REPEAT=${3:-5}
BIN=${NETLENS_BIN:-./build/netlens}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
elapsed() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); awk -v s="$s" -v e="$e" 'BEGIN {print e - s}'; }
guided=(); gist=()
for i in $(seq "$REPEAT"); do
  guided+=("$(elapsed "$BIN" guided --model "$MODEL" --image "$IMAGE" --out "$OUT/guided")")
  gist+=("$(elapsed "$BIN" gist --model "$MODEL" --image "$IMAGE" --out "$OUT/gist")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
g=$(median "${guided[@]}"); t=$(median "${gist[@]}")
printf 'guided  %.2f s (median of %d)\ngist    %.2f s (median of %d)\nratio   %.2fx (goal <= 3x)\n' "$g" "$REPEAT" "$t" "$REPEAT" "$(awk -v t="$t" -v g="$g" 'BEGIN {print t / g}')"
