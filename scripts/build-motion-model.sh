#!/usr/bin/env bash
# Reproduces the embedded motion adapter models/emoji-motion: AnimateDiff-style motion modules trained for the
# embedded emoji model (models/emoji-base, frozen) on synthetic clips with known motion (move, zoom, rotate, bounce,
# colour shift) made on the fly from the emoji renders. CPU only. Usage: scripts/build-motion-model.sh [WORK_DIR]
# MOTION_STEPS (default 2000) sets the optimizer steps; a stopped run continues with the same command (--resume).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-$here/runs}"
sc="$here/selfcascade"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
steps=${MOTION_STEPS:-2000}

# 1. The emoji renders at 128 px (4x the clip size: the clips are resampled from them).
[ -d "$work/data/render/128/train" ] || "$sc" data --out "$work/data" --sizes 128

# 2. A few example clips with their ground truth (frames, caption.txt, motion.json) to look at.
"$sc" motion-data --renders "$work/data/render/128/train" --out "$work/motion-clips" --clips 20 --seed 0

# 3. The motion adapter: 1 motion module per UNet layer (32/64/128 channels, 4 heads, 32 frame positions, no mid
#    block), output projections zero at the start (the image model's behaviour), AdamW lr 3e-4, 20 warm-up steps,
#    batch 4 clips of 8 frames at 32 px, caption dropout 0.1.
resume=(); [ -d "$work/motion/checkpoints" ] && resume=(--resume)
nice -n 10 "$sc" train-motion --data "$work/data/render/128/train" --out "$work/motion" --steps "$steps" --batch 4 \
  --lr 3e-4 --warmup 20 --checkpoint-every 20 --threads 2 --seed 0 "${resume[@]}"

# 4. The committed folder is the exported adapter (config.json + fp16 safetensors) plus its card.
mkdir -p "$here/models/emoji-motion"
cp "$work/motion/motion_adapter/config.json" "$work/motion/motion_adapter/diffusion_pytorch_model.safetensors" "$here/models/emoji-motion/"
cp "$work/motion/loss.png" "$here/models/emoji-motion/loss.png"

# 5. A sample, as in the README.
"$sc" generate-video --prompt "red heart, zooming in" --size 128x128 --frames 8 --out "$work/heart.webp" --save-frames "$work/heart-frames"
