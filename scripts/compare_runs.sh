#!/usr/bin/env bash
# The bit-identity gate of a refactor: runs the shipped scenes (learned and
# analytic models) plus the planners and the rollout pool they do not use by
# default, and compares every per-episode result and the summary with a
# recording made on the commit before the change. Latencies and the model's
# path are left out; everything else must be equal as JSON text (serde prints
# shortest round-trip floats, so equal text is equal bits).
#
#   BIN=/tmp/telic-base scripts/compare_runs.sh --record   # on the old commit
#   scripts/compare_runs.sh                                # on the new one
#
# BIN is the `telic` program (default: the workspace's debug build), GOLDEN the
# folder of the recording (default /tmp/telic-golden). Exit 1 on a difference.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
bin=${BIN:-$target/debug/telic}
gold=${GOLDEN:-/tmp/telic-golden}
now=$(mktemp -d)
record=0
[ "${1:-}" = --record ] && record=1
mkdir -p "$gold"
strip='del(.model) | del(.episodes[].plan_latency_ms)
  | del(.summary.plan_latency_p50_ms, .summary.plan_latency_p99_ms, .summary.plan_latency_max_ms)'
runs=(
  "reach default 20" "navigate default 20" "push default 20"
  "reach analytic 20" "navigate analytic 20" "push analytic 20"
  "navigate analytic 5 --planner gradient" "reach analytic 3 --planner gradient"
  "push analytic 5 --planner cem" "navigate analytic 5 --threads 2"
)
fail=0
for r in "${runs[@]}"; do
  # shellcheck disable=SC2086
  set -- $r
  scene=$1 model=$2 n=$3
  shift 3
  tag=$(echo "$scene-$model-$n$*" | tr -d ' -')
  "$bin" run "$scene" --model "$model" --episodes "$n" --seed 1 --jobs 2 --quiet \
    --json "$now/$tag.json" "$@" > /dev/null
  jq -S "$strip" "$now/$tag.json" > "$now/$tag.cmp"
  if [ $record = 1 ]; then
    cp "$now/$tag.cmp" "$gold/"
    echo "recorded $tag"
  elif diff -q "$gold/$tag.cmp" "$now/$tag.cmp" > /dev/null; then
    echo "same     $tag"
  else
    echo "DIFF     $tag"
    diff <(jq -c '.episodes[]' "$gold/$tag.cmp") <(jq -c '.episodes[]' "$now/$tag.cmp") | head -6 || true
    fail=1
  fi
done
rm -rf "$now"
exit $fail
