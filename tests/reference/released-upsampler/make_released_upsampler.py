"""Reference data for the released Self-Cascade upsampler import (issue 14, item 3).

Runs the RELEASED upsampler code itself (GuoLanqing/Self-Cascade, branch stable-diffusion-xl,
source_override/unet2dconditionalmodel.py: ResBlock, TimestepEmbedSequential) on a tiny configuration with random
weights, and writes:
  upsampler_only.pth   torch.save of a Lightning-style checkpoint {"state_dict": {"unet.feature_upsamplerK...": ...},
                       "epoch", "global_step", "pytorch-lightning_version"}, as the released checkpoint is read by
                       sdxl_inference.py (torch.load(path)["state_dict"], keys minus "unet.")
  unet/config.json     the tiny UNet the set belongs to (3 down blocks of 32 channels, temb 128: released layout =
                       feature_upsampler0..2 after down blocks 0..2, feature_upsampler3 after the mid block)
  io.safetensors       emb (B, temb), lr{k} (B, C, h, w) and out{k} = feature_upsamplerK(lr{k}, emb) (B, C, 2h, 2w)

Run (no fetched code is committed; the released repository is exported to a temporary folder):
  G=/work/.mirror/GuoLanqing+Self-Cascade/repo; D=$(mktemp -d)
  git --git-dir=$G archive stable-diffusion-xl source_override | tar -x -C $D
  ../shared/refenv/python tests/reference/released-upsampler/make_released_upsampler.py $D
"""
import json
import os
import sys
import types
from collections import OrderedDict

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
CHANNELS = (32, 32, 32)   # block_out_channels; every point has 32 channels (the released GroupNorm32 needs C % 32 == 0)
TEMB = 4 * CHANNELS[0]    # diffusers' time_embed_dim
BATCH, H, W = 2, 5, 3     # non-square, odd low-res size: the up block doubles it to 10 x 6


def import_released(root):
    sys.path.insert(0, root)
    # The module imports diffusers names first; load them while the real import machinery is intact.
    import diffusers.loaders  # noqa: F401
    from diffusers.loaders import PeftAdapterMixin, UNet2DConditionLoadersMixin  # noqa: F401
    from diffusers.loaders.single_file_model import FromOriginalModelMixin  # noqa: F401
    import diffusers.models.unets.unet_2d_blocks  # noqa: F401

    # einops and cv2 are imported at module level by the released ldm helpers but not used by ResBlock /
    # TimestepEmbedSequential; refenv has neither, so stand-ins that raise if anything calls them.
    class Stub(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            def unavailable(*a, **k):
                raise NotImplementedError(f"{self.__name__}.{name} is a stub in this script")
            return unavailable

    for m in ("einops", "cv2"):
        try:
            __import__(m)
        except ImportError:
            sys.modules[m] = Stub(m)
    from source_override.unet2dconditionalmodel import ResBlock, TimestepEmbedSequential
    return ResBlock, TimestepEmbedSequential


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    ResBlock, TimestepEmbedSequential = import_released(sys.argv[1])
    torch.manual_seed(1234)

    # Exactly the released construction (UNet2DConditionModel.__init__, "add unsampler"): dropout 0, dims 2,
    # use_checkpoint False, use_scale_shift_norm False; upsampler 3 (mid) uses block_out_channels[2].
    widths = [CHANNELS[0], CHANNELS[1], CHANNELS[2], CHANNELS[2]]
    ups = torch.nn.Module()
    for k, c in enumerate(widths):
        setattr(ups, f"feature_upsampler{k}", TimestepEmbedSequential(
            ResBlock(c, TEMB, 0.0, dims=2, use_checkpoint=False, up=True, use_scale_shift_norm=False),
            ResBlock(c, TEMB, 0.0, dims=2, use_checkpoint=False, use_scale_shift_norm=False)))
    ups.eval()

    # Random weights everywhere (the released init zeroes each block's out conv, which would hide that path).
    with torch.no_grad():
        for name, p in ups.named_parameters():
            if name.endswith("in_layers.0.weight") or name.endswith("out_layers.0.weight"):
                p.copy_(1.0 + 0.3 * torch.randn_like(p))        # GroupNorm scale around 1
            elif p.dim() == 1:
                p.copy_(0.2 * torch.randn_like(p))              # biases
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn_like(p) / fan_in ** 0.5)    # unit-variance-preserving weights

    emb = torch.randn(BATCH, TEMB)
    io = {"emb": emb.contiguous()}
    with torch.no_grad():
        for k, c in enumerate(widths):
            lr = torch.randn(BATCH, c, H, W)
            out = getattr(ups, f"feature_upsampler{k}")(lr, emb, context=None)
            assert out.shape == (BATCH, c, 2 * H, 2 * W), out.shape
            io[f"lr{k}"] = lr.contiguous()
            io[f"out{k}"] = out.contiguous()

    # Lightning-style checkpoint: the module sits at "unet." in the LightningModule; a non-upsampler key is
    # included because sdxl_inference.py filters by module name.
    state = OrderedDict(("unet." + k, v.detach().clone()) for k, v in ups.state_dict().items())
    state["unet.conv_in.weight"] = torch.randn(32, 4, 3, 3)
    ckpt = {"epoch": 7, "global_step": 1000, "pytorch-lightning_version": "2.2.1", "state_dict": state}
    torch.save(ckpt, os.path.join(HERE, "upsampler_only.pth"))
    # Reading it back the way sdxl_inference.py does must give the same module outputs.
    check = torch.load(os.path.join(HERE, "upsampler_only.pth"), map_location="cpu")["state_dict"]
    ups.load_state_dict({k[len("unet."):]: v for k, v in check.items() if "feature_upsampler" in k})

    from safetensors.torch import save_file
    save_file(io, os.path.join(HERE, "io.safetensors"))

    os.makedirs(os.path.join(HERE, "unet"), exist_ok=True)
    config = {
        "_class_name": "UNet2DConditionModel",
        "sample_size": 8, "in_channels": 4, "out_channels": 4,
        "block_out_channels": list(CHANNELS), "layers_per_block": 1, "norm_num_groups": 32,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        "cross_attention_dim": 32, "attention_head_dim": [2, 2, 2],
    }
    with open(os.path.join(HERE, "unet", "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    n = sum(p.numel() for p in ups.parameters())
    print(f"{n} parameters; max|out| = {max(io[f'out{k}'].abs().max().item() for k in range(4)):.3f}")


if __name__ == "__main__":
    main()
