"""Reference data for the ModelScope-style UNet3DConditionModel beyond shared/fixtures/diffusers-video.

Run (from the repository root, with the refenv of ../shared/refenv: diffusers 0.28.2, torch 1.13):
    ../shared/refenv/python tests/reference/unet3d/make_unet3d.py tests/reference/unet3d
Writes:
    unet3d_default_arch.json   the full-size UNet3DConditionModel built from diffusers' defaults plus sample_size 32
                               (block_out_channels 320/640/1280/1280, 2 layers per block, attention_head_dim 64,
                               cross_attention_dim 1024): its config, parameter count and every state-dict name with
                               its shape, in the layout of shared/fixtures/diffusers-parity/arch/*.json.
The network is built with every parameter moved to the meta device as it is registered (as accelerate's
init_empty_weights does), so it needs no 7 GB of memory.
"""
import json, os, sys

import torch
import torch.nn as nn


def build_on_meta(cls, **cfg):
    original = nn.Module.register_parameter

    def register(self, name, param):
        original(self, name, param)
        if param is not None:
            self._parameters[name] = nn.Parameter(self._parameters[name].to("meta"), requires_grad=param.requires_grad)

    nn.Module.register_parameter = register
    try:
        return cls(**cfg)
    finally:
        nn.Module.register_parameter = original


def main(out):
    from diffusers import UNet3DConditionModel
    unet = build_on_meta(UNet3DConditionModel, sample_size=32)
    config = {k: v for k, v in dict(unet.config).items() if not k.startswith("_")}
    state = {k: list(v.shape) for k, v in unet.state_dict().items()}
    params = sum(p.numel() for p in unet.parameters())
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "unet3d_default_arch.json"), "w") as f:
        json.dump({"class": "UNet3DConditionModel", "config": config, "params": params, "state_dict": state}, f, indent=0)
    print(f"{len(state)} tensors, {params} parameters")


if __name__ == "__main__":
    main(sys.argv[1])
