#!/usr/bin/env bash
# Measures a train-base checkpoint without disturbing the run that wrote it: copies checkpoint STEP of RUN into
# RUN-eval-STEP, exports it there (train-base --resume with --steps STEP), and draws the model card's prompt grid at
# the native size with prompt match and the prompt-sensitivity table (docs/BENCHMARKS.md, "emoji-base v2's objective").
# Usage: scripts/eval-base-checkpoint.sh RUN STEP DATA [train-base options of the run, e.g. --prediction v_prediction]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sc="$here/selfcascade"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
run="${1:?RUN}"; step="${2:?STEP}"; data="${3:?DATA: the --data folder of the run}"; shift 3
ck="$run/checkpoints/step-$(printf "%08d" "$step")"
[ -d "$ck" ] || { echo "no checkpoint $ck" >&2; exit 1; }
out="$run-eval-$step"
mkdir -p "$out/checkpoints"
[ -d "$out/checkpoints/$(basename "$ck")" ] || cp -r "$ck" "$out/checkpoints/"
[ -d "$out/model" ] || "$sc" train-base --data "$data" --out "$out" --preset emoji --steps "$step" --warmup 100 \
  --preview-every 0 --threads 2 --seed 0 --resume "$@" > "$out/export.log" 2>&1
# The embedded model's sampling defaults (guidance 3, pivot strength 0.5, 25 steps) for the exported folder.
cp "$here/models/emoji-base/model_index.json" "$out/model/model_index.json"
"$sc" prompt-grid --model "$out/model" --prompts-file "$here/models/emoji-base/card-prompts.txt" --seeds 0,1 --size 32 \
  --feature-net "$here/models/emoji-featurenet-train.safetensors" --sensitivity --out "$out/grid.png" --report "$out/grid.md"
grep -E "^\| native" "$out/grid.md"
