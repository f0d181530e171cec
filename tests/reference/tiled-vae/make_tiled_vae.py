"""Reference data for SelfCascade's tiled VAE (diffusers' AutoencoderKL.enable_tiling()).

Run from the repository root, in the reference environment (diffusers 0.28.2, torch 1.13, CPU):
    ../shared/refenv/python tests/reference/tiled-vae/make_tiled_vae.py
It reads the fixtures' tiny VAE (../shared/fixtures/diffusers-parity/models/vae_tiny: 2 blocks, scale factor 2,
config sample_size 32, a mid-block attention) and writes tests/reference/tiled-vae/tiled_vae.safetensors.

Cases (every one really tiles: the input exceeds the tile, non-square, odd tile counts, short last tiles):
- decode_a: latent (1,4,37,29), diffusers' defaults for this VAE: tile_sample_min_size 32 px, tile_latent_min_size
  16, overlap 0.25 -> latent stride 12, blend 8 px, rows start 0,12,24,36 (4, the last 1 latent high),
  columns 0,12,24 (3).
- decode_b: latent (2,4,20,31), tiles set to 24 px / 12 latents -> stride 9, blend 6 px: 3 x 4 tiles.
- encode_a: image (1,3,78,54), defaults -> pixel stride 24, blend 4 latents: rows 0,24,48,72 (4, the last 6 px),
  columns 0,24,48 (3, the last 6 px). Stored: the blended moments (mean, logvar) = the posterior's parameters.
  (A 2-px last tile would fail inside diffusers itself: one value per GroupNorm group.)
- encode_b: image (1,3,60,80), tiles 24 px / 12 latents -> pixel stride 18, blend 3 latents: 4 x 5 tiles.
For each: `<case>_in`, `<case>_tiled` (diffusers' tiled output), `<case>_whole` (the untiled output of the same
model, to bound the tiled result against). The tile sizes are in tiled_vae.json.
"""
import json
import os

import torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
VAE = os.path.join(HERE, "..", "..", "..", "..", "shared", "fixtures", "diffusers-parity", "models", "vae_tiny")

torch.manual_seed(0)
vae = AutoencoderKL.from_pretrained(VAE).eval()
assert vae.tile_sample_min_size == 32 and vae.tile_latent_min_size == 16


def smooth(shape, seed):
    """Smooth structure plus noise, so that a seam or a missing blend shows."""
    g = torch.Generator().manual_seed(seed)
    b, c, h, w = shape
    y = torch.linspace(0, 3, h).view(1, 1, h, 1)
    x = torch.linspace(0, 4, w).view(1, 1, 1, w)
    ch = torch.arange(c, dtype=torch.float32).view(1, c, 1, 1)
    base = torch.sin(x * 1.3 + ch) * torch.cos(y * 0.9 - ch * 0.5)
    return (base + 0.3 * torch.randn(shape, generator=g)).contiguous()


out, meta = {}, {}
with torch.no_grad():
    for name, shape, tiles, seed in [("decode_a", (1, 4, 37, 29), (32, 16), 1), ("decode_b", (2, 4, 20, 31), (24, 12), 2)]:
        vae.tile_sample_min_size, vae.tile_latent_min_size = tiles
        z = smooth(shape, seed)
        vae.disable_tiling()
        whole = vae.decode(z).sample
        vae.enable_tiling()
        tiled = vae.decode(z).sample
        assert tiled.shape == whole.shape, (tiled.shape, whole.shape)
        out[name + "_in"], out[name + "_tiled"], out[name + "_whole"] = z, tiled, whole
        meta[name] = {"tile_sample_min_size": tiles[0], "tile_latent_min_size": tiles[1], "overlap": vae.tile_overlap_factor,
                      "max_abs_tiled_minus_whole": float((tiled - whole).abs().max())}
    for name, shape, tiles, seed in [("encode_a", (1, 3, 78, 54), (32, 16), 3), ("encode_b", (1, 3, 60, 80), (24, 12), 4)]:
        vae.tile_sample_min_size, vae.tile_latent_min_size = tiles
        x = smooth(shape, seed).clamp(-1, 1)
        vae.disable_tiling()
        d = vae.encode(x).latent_dist
        whole = torch.cat([d.mean, d.logvar], 1)
        vae.enable_tiling()
        d = vae.encode(x).latent_dist
        tiled = torch.cat([d.mean, d.logvar], 1)
        assert tiled.shape == whole.shape, (tiled.shape, whole.shape)
        out[name + "_in"], out[name + "_tiled"], out[name + "_whole"] = x, tiled, whole
        meta[name] = {"tile_sample_min_size": tiles[0], "tile_latent_min_size": tiles[1], "overlap": vae.tile_overlap_factor,
                      "max_abs_tiled_minus_whole": float((tiled - whole).abs().max())}

import diffusers
meta["versions"] = {"diffusers": diffusers.__version__, "torch": torch.__version__}
save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(HERE, "tiled_vae.safetensors"))
with open(os.path.join(HERE, "tiled_vae.json"), "w") as f:
    json.dump(meta, f, indent=2)
print(json.dumps(meta, indent=2))
