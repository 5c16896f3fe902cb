#!/usr/bin/env bash
# Wall time of synthesizing the whole Ladder app next to a one-bucket CDK Go
# app (the floor set by jsii and Node start-up), measured in the same run,
# alternating so machine noise hits both alike. Prints medians and the ratio.
#   scripts/bench-synth.sh [runs]      (default 5)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export PATH="$root/node_modules/.bin:$PATH"
runs=${1:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Compile first, so the timings are synth only, not go build.
go build -o "$work/ladder" ./app
go build -o "$work/onebucket" ./test/bench/onebucket

ms() { echo $(( $(date +%s%N) / 1000000 )); }
time_one() { # bin context-json -> ms
  local out="$work/out-$RANDOM" t0 t1
  t0=$(ms)
  CDK_OUTDIR="$out" CDK_CONTEXT_JSON="$2" "$1" >/dev/null 2>"$work/stderr" || { cat "$work/stderr" >&2; return 1; }
  t1=$(ms)
  rm -rf "$out"
  echo $((t1 - t0))
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "node: $(node --version) ($(command -v node))"
# The Ladder app is timed twice: as `cdk synth` runs it (Lambda assets
# bundled: a cached `go build` per function) and with bundling skipped, as
# the tests run it, so the share of bundling is visible.
# The CLI hands cdk.json's context (the feature flags) to the app in
# CDK_CONTEXT_JSON; the binaries are run directly, so they get it the same way.
flags=$(node -p 'JSON.stringify(require("./cdk.json").context)')
nobundle=$(node -p 'JSON.stringify({...require("./cdk.json").context, "aws:cdk:bundling-stacks": []})')
ladder=() floor=() lean=()
for i in $(seq "$runs"); do
  floor+=("$(time_one "$work/onebucket" "$flags")")
  ladder+=("$(time_one "$work/ladder" "$flags")")
  lean+=("$(time_one "$work/ladder" "$nobundle")")
  echo "run $i: one-bucket ${floor[-1]} ms, ladder ${ladder[-1]} ms, ladder without bundling ${lean[-1]} ms"
done
mf=$(printf '%s\n' "${floor[@]}" | median)
ml=$(printf '%s\n' "${ladder[@]}" | median)
mn=$(printf '%s\n' "${lean[@]}" | median)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
echo "median of $runs: one-bucket app ${mf} ms (jsii start-up floor); ladder app ${ml} ms, ratio $(ratio "$ml" "$mf")x; ladder without bundling ${mn} ms, ratio $(ratio "$mn" "$mf")x"
