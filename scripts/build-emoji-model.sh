#!/usr/bin/env bash
# Reproduces the embedded emoji base model, its feature upsamplers, the fine-tune baselines, the benchmark's feature
# network and the quality benchmark (docs/BENCHMARKS.md, models/emoji-base/README.md). CPU only; several hours on
# the 2-core development machine (the base model's BASE_STEPS dominate; every step checkpoints and resumes: rerun the
# script after an interruption and each training step continues where it stopped).
# Usage: scripts/build-emoji-model.sh [WORK_DIR]
#
# The benchmark measures resolution adaptation on concepts the base model learned: its prompts are train-split
# captions (bench-quality --split train). The base model trains on 32 px renders only, so the 64-256 px renders of
# those designs are unseen ground truth; the upsamplers and fine-tunes, which train on 64/128 px renders, leave the
# benchmark's designs out (--exclude-captions with the prompt list bench-quality writes before anything trains).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-$here/runs}"
sc="$here/selfcascade"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
N=${UPSAMPLER_STEPS:-100}        # training steps of every upsampler set and of the short fine-tune
PROMPTS=${PROMPTS:-64}           # benchmark prompts (train-split captions spread over the split)
FT_LONG=$((5 * N))               # the long fine-tune (the paper's "5x" comparison)

# 1. Data: emoji SVGs from npm (MIT / Apache-2.0), rendered at 32, 64, 128 px with captions and a fixed split.
"$sc" data --out "$work/data" --sizes 32,64,128,256

# 2. The base model: pixel space, 32x32, trained from scratch (preset 'emoji').
"$sc" train-base --data "$work/data/render/32/train" --out "$work/base" --preset emoji --steps ${BASE_STEPS:-3000} \
  --warmup 100 --checkpoint-every 250 --preview-every 500 --threads 2 --seed 0 ${RESUME_BASE:+--resume}
model="$work/base/model"
# The committed models/emoji-base is this folder plus the sampling defaults in model_index.json
# ("_selfcascade_defaults": guidance 3, pivot strength 0.5, 25 steps; see its README).

# 2b. The benchmark's prompt list (fixed by the data alone), written before anything trains on high-res renders.
"$sc" bench-quality --data "$work/data" --split train --prompts $PROMPTS --prompts-only --out "$work/quality.md"
exclude="$work/quality.prompts.txt"

# 3. Feature upsamplers, both variants, for 32->64 (stage 1) and 64->128 (stage 2), the same number of steps.
for v in lite full; do
  "$sc" train-upsamplers --model "$model" --data "$work/data/render/64/train" --variant $v --size 64 --stage-scale 2 \
    --steps $N --batch 8 --lr 5e-4 --checkpoint-every $N --out "$work/ups-$v-64" --threads 2 --exclude-captions "$exclude"
  "$sc" train-upsamplers --model "$model" --data "$work/data/render/128/train" --variant $v --size 128 --stage-scale 2 \
    --steps $N --batch 4 --lr 5e-4 --checkpoint-every $N --out "$work/ups-$v-128" --threads 2 --exclude-captions "$exclude"
done

# 4. The full fine-tune baseline: the base UNet trained at 64 px for N and 5N steps (text encoder frozen).
for steps in $N $FT_LONG; do
  "$sc" train-base --data "$work/data/render/64/train" --out "$work/ft-$steps" --preset emoji --size 64 \
    --init-from "$model" --freeze-text-encoder --steps $steps --batch 8 --lr 5e-4 --checkpoint-every $steps \
    --preview-every 0 --threads 2 --seed 0 --exclude-captions "$exclude"
done

# 4b. The benchmark's judge: a caption classifier of the train split (FD/KID features and prompt match).
[ -f "$work/featurenet-train/emoji-featurenet-train.safetensors" ] || SPLIT=train "$here/scripts/train-feature-net.sh" "$work"

# 5. The quality benchmark (docs/BENCHMARKS.md's table, grid and plot).
"$sc" bench-quality --model "$model" --data "$work/data" --split train --prompts $PROMPTS --steps 20 --scales 2,4,8 --guidance 3 \
  --upsamplers-lite "$work/ups-lite-64/upsamplers,$work/ups-lite-128/upsamplers" --lite-steps $N \
  --upsamplers-full "$work/ups-full-64/upsamplers,$work/ups-full-128/upsamplers" --full-steps $N \
  --finetuned "finetune-${N}=$work/ft-$N/model@$N" --finetuned "finetune-${FT_LONG}=$work/ft-$FT_LONG/model@$FT_LONG" \
  --feature-net "$work/featurenet-train/emoji-featurenet-train.safetensors" --images "$work/quality-images" \
  --out "$work/quality.md" --grid "$here/docs/benchmark-grid.png" --plot "$here/docs/benchmark-fidelity.png"

# 6. The model card's grid: 16 train-split prompts x 2 seeds at 32 px and through the cascade at 128 px.
"$sc" prompt-grid --model "$model" --prompts-file "$here/models/emoji-base/card-prompts.txt" --seeds 0,1 --size 128 \
  --feature-net "$work/featurenet-train/emoji-featurenet-train.safetensors" --out "$work/card-grid.png" --report "$work/card-grid.md"
