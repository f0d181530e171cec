#!/usr/bin/env bash
# The GPU bundle (DESIGN.md §6): a self-contained single-file `selfcascade` for linux-x64 WITHOUT the CPU libtorch
# (-p:TorchBackend=none), plus TorchSharp's libLibTorchSharp.so (GLIBCXX need patched weak by the build) and
# SkiaSharp's native libraries; without the embedded emoji models (-p:EmbedModels=false: 29 MiB; pass --model).
# On the GPU machine it loads the CUDA libtorch of a PyTorch install named by SELFCASCADE_LIBTORCH or --libtorch. Fails when the bundle is 64 MiB or larger.
#
# usage: scripts/publish-gpu.sh [OUT_DIR]        (default: .gpu/ in the checkout, ignored by git)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(mkdir -p "${1:-$here/.gpu}" && cd "${1:-$here/.gpu}" && pwd)"
limit_mib=64
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
rm -rf "$out"/*
# Its own artifacts folder: a TorchBackend=none restore must not overwrite the CPU build's obj/ in the checkout.
dotnet publish "$here/src/SelfCascade.Cli/SelfCascade.Cli.csproj" -c Release -r linux-x64 --self-contained \
  -p:PublishSingleFile=true -p:EnableCompressionInSingleFile=true -p:TorchBackend=none -p:EmbedModels=false \
  -p:DebugType=none -p:GenerateDocumentationFile=false \
  --artifacts-path "$here/.gpu-build" -o "$out" -nodeReuse:false -v quiet -nologo >&2
mv "$out/SelfCascade.Cli" "$out/selfcascade"
# diffusers' reference measurements travel with the bundle, so `bench-gpu` prints the ratios on the GPU machine.
if [ -d "$here/../shared/bench" ]; then mkdir -p "$out/bench-reference" && cp "$here/../shared/bench/"*.json "$here/../shared/bench/README.md" "$out/bench-reference/"; fi
# A CPU libtorch must not have slipped in (it would be the one loaded, and it is ~600 MB).
if ls "$out"/libtorch_cpu.so* "$out"/libc10.so >/dev/null 2>&1; then echo "error: a libtorch was bundled" >&2; exit 1; fi
[ -f "$out/libLibTorchSharp.so" ] || { echo "error: libLibTorchSharp.so missing from the bundle" >&2; exit 1; }
bytes=$(du -sb "$out" | cut -f1)
mib=$(( (bytes + 1048575) / 1048576 ))
echo "bundle: $out ($mib MiB; limit $limit_mib MiB)"
ls -la "$out" >&2
if [ "$bytes" -ge $(( limit_mib * 1048576 )) ]; then echo "error: the bundle is $mib MiB, over the $limit_mib MiB limit" >&2; exit 1; fi
