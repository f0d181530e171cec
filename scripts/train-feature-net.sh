#!/usr/bin/env bash
# Reproduces the quality benchmark's feature networks, their accuracy tables and the small held-out sets the tests
# read. CPU only, 1 thread. Usage: [SPLIT=test|train] scripts/train-feature-net.sh [WORK_DIR]
#   SPLIT=test (default): models/emoji-featurenet.safetensors, the 197 test-split captions (docs/featurenet-accuracy.md,
#     tests/reference/featurenet/held-out-32.safetensors); 40 epochs, about 45 minutes on the shared 2-core machine.
#   SPLIT=train: models/emoji-featurenet-train.safetensors, the 1,386 train-split captions: the judge of
#     `bench-quality --split train` and `prompt-grid` (docs/featurenet-train-accuracy.md,
#     tests/reference/featurenet/held-out-train-32.safetensors); 30 epochs, about 10 minutes on a quiet machine.
# Resume after an interruption: RESUME=1 (continues from the last epoch's checkpoint with a fresh Adam state, so the
# result differs slightly from an uninterrupted run).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-$here/runs}"
sc="$here/selfcascade"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
split=${SPLIT:-test}
case "$split" in
  test)  name=emoji-featurenet; dir="$work/featurenet"; epochs=${EPOCHS:-40}; doc=featurenet-accuracy.md; held=held-out-32.safetensors ;;
  train) name=emoji-featurenet-train; dir="$work/featurenet-train"; epochs=${EPOCHS:-30}; doc=featurenet-train-accuracy.md; held=held-out-train-32.safetensors ;;
  *) echo "SPLIT must be test or train" >&2; exit 2 ;;
esac

[ -f "$work/data/manifest.json" ] || "$sc" data --out "$work/data" --sizes 32,64,128,256

mkdir -p "$dir"
nice -n 10 "$sc" train-feature-net --data "$work/data" --split "$split" --sizes 32,64,128 --epochs "$epochs" --batch 64 --lr 3e-3 \
  --input-size 64 --channels 16 --embedding 128 --seed 0 --checkpoint-every 1 --threads 1 ${RESUME:+--resume} \
  --out "$dir/$name.safetensors" --report "$dir/report.md" \
  --export-held-out "$dir/$held" --export-count 96

cp "$dir/$name.safetensors" "$here/models/$name.safetensors"
cp "$dir/report.md" "$here/docs/$doc"
mkdir -p "$here/tests/reference/featurenet"
cp "$dir/$held" "$here/tests/reference/featurenet/$held"
