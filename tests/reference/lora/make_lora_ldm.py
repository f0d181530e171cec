"""LoRA reference for kohya names in the original LDM/SGM UNet layout (sd-scripts' SDXL naming:
lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q, …_in_layers_2, middle_block_1_…, output_blocks_…).

Run from the repository root with the reference environment:
    ../shared/refenv/python tests/reference/lora/make_lora_ldm.py

The names are made here from each diffusers module (the inverse of the LDM -> diffusers block arithmetic); the
reference resolves them back with diffusers 0.28's own `lora_state_dict(..., unet_config=...)`
(_maybe_map_sgm_blocks_to_diffusers + _convert_kohya_lora_to_diffusers) and fuses with the kohya formula
(make_lora.py explains why: refenv has no peft). Only modules where diffusers' mapping lands on the module the name
was made from are kept (the script asserts all do for this UNet).

Writes sdxl_kohya_ldm.safetensors (UNet only, rank 1) and reference_ldm.safetensors (sdxl_kohya_ldm/unet_out on the
SDXL inputs stored in reference.safetensors).
"""
import os, re, sys
import torch
from safetensors.torch import save_file, load_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_lora as M
from diffusers import UNet2DConditionModel
from diffusers.loaders import LoraLoaderMixin

PARTS = {"conv1": "in_layers.2", "conv2": "out_layers.3", "time_emb_proj": "emb_layers.1", "conv_shortcut": "skip_connection"}


def ldm_name(path, cfg):
    L = cfg.layers_per_block
    m = re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)$", path)
    if m:
        b, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        i = 1 + b * (L + 1) + j
        return f"input_blocks.{i}.0.{PARTS[rest]}" if kind == "resnets" else f"input_blocks.{i}.1.{rest}"
    m = re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv$", path)
    if m:
        return f"input_blocks.{(int(m[1]) + 1) * (L + 1)}.0.op"
    m = re.match(r"mid_block\.(resnets|attentions)\.(\d+)\.(.+)$", path)
    if m:
        kind, j, rest = m[1], int(m[2]), m[3]
        return f"middle_block.{2 * j}.{PARTS[rest]}" if kind == "resnets" else f"middle_block.1.{rest}"
    m = re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)$", path)
    if m:
        b, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        i = b * (L + 1) + j
        return f"output_blocks.{i}.0.{PARTS[rest]}" if kind == "resnets" else f"output_blocks.{i}.1.{rest}"
    m = re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv$", path)
    if m:
        b = int(m[1])
        has_attn = cfg.up_block_types[b].startswith("CrossAttn")
        return f"output_blocks.{b * (L + 1) + L}.{2 if has_attn else 1}.conv"
    return None


def main():
    gen = torch.Generator().manual_seed(7)
    unet = UNet2DConditionModel.from_pretrained(M.p("models", "unet_sdxl_style")).eval()
    mods = M.targets(unet, ("down_blocks", "mid_block", "up_blocks"))
    sd, intended = {}, {}
    for path, m in mods.items():
        name = ldm_name(path, unet.config)
        if name is None:
            continue
        k = "lora_unet_" + name.replace(".", "_")
        M.add_pair(sd, k, m, gen, rank=1, conv_rank=1)
        intended[k] = path
    conv, alphas = LoraLoaderMixin.lora_state_dict({k: v.clone() for k, v in sd.items()}, unet_config=unet.config)
    landed = {M.diffusers_module(k)[1] for k in conv if not k.endswith(".alpha")}
    assert landed == set(intended.values()), sorted(landed ^ set(intended.values()))[:10]
    save_file(sd, os.path.join(HERE, "sdxl_kohya_ldm.safetensors"))
    M.fuse(conv, alphas or {}, {"unet": unet}, converted_names=True)
    ref = load_file(os.path.join(HERE, "reference.safetensors"))
    with torch.no_grad():
        out = unet(ref["sdxl_unet_sample"], ref["sdxl_unet_timestep"], encoder_hidden_states=ref["sdxl_unet_states"],
                   added_cond_kwargs={"text_embeds": ref["sdxl_text_embeds"], "time_ids": ref["sdxl_time_ids"]}).sample
    save_file({"sdxl_kohya_ldm/unet_out": out.contiguous()}, os.path.join(HERE, "reference_ldm.safetensors"))
    print(len(intended), "layers;", {f: os.path.getsize(os.path.join(HERE, f)) for f in os.listdir(HERE)})


if __name__ == "__main__":
    main()
