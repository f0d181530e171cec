#!/usr/bin/env bash
# Reproduces the quality benchmark's feature network, models/emoji-featurenet.safetensors, its accuracy table
# (docs/featurenet-accuracy.md, quoted in docs/BENCHMARKS.md) and the small held-out set the tests read
# (tests/reference/featurenet/held-out-32.safetensors). CPU only; 40 epochs took about 45 minutes on the shared
# 2-core development machine (1 thread, nice 10). Usage: scripts/train-feature-net.sh [WORK_DIR]
# Resume after an interruption: RESUME=1 scripts/train-feature-net.sh [WORK_DIR] (continues from the last epoch's
# checkpoint with a fresh Adam state, so the result differs slightly from an uninterrupted run).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-$here/runs}"
sc="$here/selfcascade"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

# The dataset, with the 256 px renders the held-out test is made from (never trained on).
[ -f "$work/data/manifest.json" ] || "$sc" data --out "$work/data" --sizes 32,64,128,256

# Classes: the 197 test-split captions (both sets' designs of a caption are one class); trained on their 32/64/128 px
# renders resized to the 64 px input, with zoom 0.7-1.3, colour jitter, blur and noise (TrainFeatureNetCommand).
mkdir -p "$work/featurenet"
nice -n 10 "$sc" train-feature-net --data "$work/data" --split test --sizes 32,64,128 --epochs ${EPOCHS:-40} --batch 64 --lr 3e-3 \
  --input-size 64 --channels 16 --embedding 128 --seed 0 --checkpoint-every 1 --threads 1 ${RESUME:+--resume} \
  --out "$work/featurenet/emoji-featurenet.safetensors" --report "$work/featurenet/report.md" \
  --export-held-out "$work/featurenet/held-out-32.safetensors" --export-count 96

cp "$work/featurenet/emoji-featurenet.safetensors" "$here/models/emoji-featurenet.safetensors"
cp "$work/featurenet/report.md" "$here/docs/featurenet-accuracy.md"
mkdir -p "$here/tests/reference/featurenet"
cp "$work/featurenet/held-out-32.safetensors" "$here/tests/reference/featurenet/held-out-32.safetensors"
