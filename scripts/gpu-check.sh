#!/usr/bin/env bash
# The one prepared call for a GPU machine (docs/GPU.md): runs the GPU bundle's `doctor` and `bench-gpu` against the
# machine's PyTorch CUDA install and writes everything to $OUT (or ./gpu-results). Build the bundle first, here:
#   scripts/publish-gpu.sh            # -> .gpu/ (< 64 MiB, so the device tool can carry it: carry [".gpu"])
# then on the GPU machine, from the checkout root:
#   scripts/gpu-check.sh              # ~5-8 min on an H200; BENCH_TIMEOUT (s) bounds bench-gpu (default 480)
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bundle="${BUNDLE:-$here/.gpu}"
out="${OUT:-$here/gpu-results}"
mkdir -p "$out"
exec > >(tee "$out/gpu-check.log") 2>&1
# DESIGN.md §6: no ICU on the GPU machine; the CUDA libtorch is the PyTorch install's torch/lib.
export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 OMP_WAIT_POLICY=PASSIVE
py="${PYTHON:-python3}"
L="${SELFCASCADE_LIBTORCH:-$("$py" -c 'import torch,os;print(os.path.dirname(torch.__file__)+"/lib")' 2>/dev/null)}"
export SELFCASCADE_LIBTORCH="$L" LD_LIBRARY_PATH="$L${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "== $(date -u +%FT%TZ) bundle=$bundle libtorch=$L"
[ -x "$bundle/selfcascade" ] || { echo "error: $bundle/selfcascade missing: run scripts/publish-gpu.sh and carry .gpu"; exit 1; }
(nvidia-smi || true) > "$out/nvidia-smi.txt" 2>&1
("$py" -c 'import torch;print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.get_device_name(0))' || true) > "$out/torch.txt" 2>&1
cat "$out/torch.txt"
"$bundle/selfcascade" doctor | tee "$out/doctor.txt"
"$bundle/selfcascade" doctor --json --throughput-seconds 1 > "$out/doctor.json"
timeout "${BENCH_TIMEOUT:-480}" "$bundle/selfcascade" bench-gpu --json ${BENCH_ARGS:-} > "$out/bench-gpu.txt" 2> "$out/bench-gpu.err"
rc=$?
cat "$out/bench-gpu.txt"; tail -5 "$out/bench-gpu.err"
echo "== bench-gpu exit $rc; results in $out"
exit $rc
