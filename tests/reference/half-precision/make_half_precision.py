"""Reference data for SelfCascade's half-precision runs: diffusers' own bf16 outputs on the CPU.

Run from the repository root, in the reference environment (diffusers 0.28.2, torch 1.13, CPU):
    ../shared/refenv/python tests/reference/half-precision/make_half_precision.py
It reads the fixtures' tiny models (../shared/fixtures/diffusers-parity/models: vae_tiny, unet_sd2_style and their
io.safetensors inputs) and writes tests/reference/half-precision/half_precision.safetensors and .json.

For each model, the fp32 weights are cast to bf16 (`model.to(torch.bfloat16)`, as `from_pretrained(...,
torch_dtype=torch.bfloat16)` does) and run on bf16 inputs:
- `vae_decode_bf16`: vae.decode(latent) of io `latent`; `vae_encode_mean_bf16`: vae.encode(image).latent_dist.mean
  of io `image`;
- `unet_c0_bf16`: the UNet on case c0 (sample, timestep, encoder_hidden_states).
- `unet_c0_roundtrip_bf16` / `_fp16`: the fp32 UNet cast to bf16 / fp16 and back to fp32 (`.to(dt).to(torch.float32)`),
  run in fp32 on c0: its weights are the rounded ones, so this is what an fp32 round trip must reproduce (fp32
  tolerance).
The same runs in fp32 (`*_fp32`) are stored too, and the json records max|bf16 - fp32| per output: how far a correct
bf16 implementation lands from fp32 on these models (the tests' tolerances are derived from it).
fp16 cannot be made here: torch 1.13 has no fp16 convolution on the CPU ("slow_conv2d_cpu" not implemented for
'Half'); the json records that too.
"""
import json
import os

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "..", "..", "..", "..", "shared", "fixtures", "diffusers-parity", "models")
out, meta = {}, {}


def record(name, fp32, bf16):
    out[name + "_fp32"], out[name + "_bf16"] = fp32.float().contiguous(), bf16.float().contiguous()
    meta[name] = {"max_abs_bf16_minus_fp32": float((bf16.float() - fp32.float()).abs().max()),
                  "max_abs_fp32": float(fp32.abs().max())}


with torch.no_grad():
    io = load_file(os.path.join(MODELS, "vae_tiny", "io.safetensors"))
    vae = {dt: AutoencoderKL.from_pretrained(os.path.join(MODELS, "vae_tiny")).eval().to(dt) for dt in (torch.float32, torch.bfloat16)}
    record("vae_decode", *(vae[dt].decode(io["latent"].to(dt)).sample for dt in (torch.float32, torch.bfloat16)))
    record("vae_encode_mean", *(vae[dt].encode(io["image"].to(dt)).latent_dist.mean for dt in (torch.float32, torch.bfloat16)))

    io = load_file(os.path.join(MODELS, "unet_sd2_style", "io.safetensors"))
    unet = {dt: UNet2DConditionModel.from_pretrained(os.path.join(MODELS, "unet_sd2_style")).eval().to(dt) for dt in (torch.float32, torch.bfloat16)}
    record("unet_c0", *(unet[dt](io["c0_sample"].to(dt), io["c0_timestep"], encoder_hidden_states=io["c0_encoder_hidden_states"].to(dt)).sample
                        for dt in (torch.float32, torch.bfloat16)))
    # Round trips: the fp32 model cast to a half type and back, run in fp32 (its weights are the rounded ones).
    for name, dt in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        back = UNet2DConditionModel.from_pretrained(os.path.join(MODELS, "unet_sd2_style")).eval().to(dt).to(torch.float32)
        out["unet_c0_roundtrip_" + name] = back(io["c0_sample"], io["c0_timestep"], encoder_hidden_states=io["c0_encoder_hidden_states"]).sample.contiguous()
        meta["unet_c0_roundtrip_" + name] = {"max_abs_minus_fp32": float((out["unet_c0_roundtrip_" + name] - out["unet_c0_fp32"]).abs().max())}
    try:
        vae16 = AutoencoderKL.from_pretrained(os.path.join(MODELS, "vae_tiny")).eval().to(torch.float16)
        vae16.decode(io["c0_sample"].half())
        meta["fp16"] = "ran"
    except Exception as e:  # noqa: BLE001 - recorded, not hidden
        meta["fp16"] = f"not available on this CPU torch: {e}"

import diffusers
meta["versions"] = {"diffusers": diffusers.__version__, "torch": torch.__version__}
save_file(out, os.path.join(HERE, "half_precision.safetensors"))
with open(os.path.join(HERE, "half_precision.json"), "w") as f:
    json.dump(meta, f, indent=2)
print(json.dumps(meta, indent=2))
