"""Reference data for single-file checkpoints, made with diffusers' own conversion scripts.

Run (from the repository root, after ../shared/refenv/setup.sh):
    ../shared/refenv/python tests/reference/single-file/make_single_file.py [OUT_DIR]

What it does
1. Assembles the tiny diffusers models the fixtures describe (pipelines/sd_tiny: unet_sd2_style + vae_tiny +
   text_openclip_h_style; pipelines/sdxl_tiny: unet_sdxl_style + vae_tiny + text_clip_l_style +
   text_sdxl_text2_style; and an SD 1.x-style set: unet_sd15_style + vae_tiny + text_clip_l_style) and converts
   each to the original single-file layout with diffusers v0.28.2's scripts
   `convert_diffusers_to_original_stable_diffusion.py` / `convert_diffusers_to_original_sdxl.py` (imported from
   $REFENV_HOME/scripts, their functions used as they are). The scripts hard-code the full-size block numbering
   (4 UNet blocks, 4 VAE blocks), so the module-level prefix tables they read (`unet_conversion_map_layer`,
   `vae_conversion_map`) are rebuilt here from each tiny config with the scripts' own loops and block counts; the
   text encoder is converted the OpenCLIP way when the tiny encoder is OpenCLIP-shaped (gelu), which the script
   detects from a 23rd layer that a 3-layer model cannot have.
2. Checks each result with diffusers' single-file loader functions (`single_file_utils.convert_ldm_unet_checkpoint`,
   `convert_ldm_vae_checkpoint`, `convert_ldm_clip_checkpoint`, `convert_open_clip_checkpoint`): they must give
   back every source tensor exactly.
3. Writes, per checkpoint, a manifest `NAME.keys.json`: every key of the single file with its dtype, shape and the
   sha256 of its little-endian bytes, for fp32 and for the script's `--half` (fp16) output. The single files
   themselves are 18-25 MB (the 49408-token embeddings), too big to commit; the C# tests write the same files
   with SelfCascade's writer and require every key, shape, dtype and byte to match these manifests, then load
   them. OUT_DIR (optional) also receives the .safetensors files for inspection.
4. Full-size key layouts: the arch fixtures' state-dict names/shapes (SD 1.5, SD 2.1, SDXL, SD VAE, CLIP-L,
   OpenCLIP-H, OpenCLIP-bigG) converted by the same scripts with their own full-size tables, written as
   `fullsize_{sd15,sd21,sdxl}.json` ({original key: shape}). The SD 2.x one also gets the 24th OpenCLIP layer and
   `text_projection` that real SD 2.x files hold and diffusers ignores (SD_2_TEXT_ENCODER_KEYS_TO_IGNORE).
"""
import hashlib
import importlib.util
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file

from refenv_compat import clip_text_state_dict

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.normpath(os.path.join(HERE, "..", "..", "..", "..", "shared", "fixtures", "diffusers-parity"))
SCRIPTS = os.path.join(os.environ.get("REFENV_HOME", os.path.expanduser("~/.cache/selfcascade-refenv")), "scripts")
OUT = sys.argv[1] if len(sys.argv) > 1 else None


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(SCRIPTS, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SD = load_script("convert_diffusers_to_original_stable_diffusion")
XL = load_script("convert_diffusers_to_original_sdxl")
from diffusers.loaders import single_file_utils as sfu  # noqa: E402


def cfg(name):
    with open(os.path.join(FIX, "models", name, "config.json")) as f:
        return json.load(f)


def weights(name):
    d = os.path.join(FIX, "models", name)
    f = [x for x in os.listdir(d) if x.endswith(".safetensors") and x != "io.safetensors"][0]
    return load_file(os.path.join(d, f))


# ---- the scripts' table-building loops, with the block counts of a given config ----
def unet_layer_map(c):
    """convert_diffusers_to_original_*: the `unet_conversion_map_layer` loop for c's blocks (not 4/3 hard-coded)."""
    n, lpb = len(c["block_out_channels"]), c["layers_per_block"]
    down_attn = [t.startswith("CrossAttn") for t in c["down_block_types"]]
    up_attn = [t.startswith("CrossAttn") for t in c["up_block_types"]]
    m = []
    for i in range(n):
        for j in range(lpb):
            m.append((f"input_blocks.{(lpb + 1) * i + j + 1}.0.", f"down_blocks.{i}.resnets.{j}."))
            if down_attn[i]:
                m.append((f"input_blocks.{(lpb + 1) * i + j + 1}.1.", f"down_blocks.{i}.attentions.{j}."))
        for j in range(lpb + 1):
            m.append((f"output_blocks.{(lpb + 1) * i + j}.0.", f"up_blocks.{i}.resnets.{j}."))
            if up_attn[i]:
                m.append((f"output_blocks.{(lpb + 1) * i + j}.1.", f"up_blocks.{i}.attentions.{j}."))
        if i < n - 1:
            m.append((f"input_blocks.{(lpb + 1) * (i + 1)}.0.op.", f"down_blocks.{i}.downsamplers.0.conv."))
            # the SD script's `{1 if i == 0 else 2}` and the SDXL script's extra output_blocks.2.2 -> 2.1 rename
            # both say: the upsampler follows the attention when the up block has one
            m.append((f"output_blocks.{(lpb + 1) * i + lpb}.{2 if up_attn[i] else 1}.", f"up_blocks.{i}.upsamplers.0."))
    m.append(("middle_block.1.", "mid_block.attentions.0."))
    for j in range(2):
        m.append((f"middle_block.{2 * j}.", f"mid_block.resnets.{j}."))
    return m


def vae_map(c, base):
    """the `vae_conversion_map` loop for c's blocks; `base` = the script's own first three entries."""
    n, lpb = len(c["block_out_channels"]), c["layers_per_block"]
    m = list(base)
    for i in range(n):
        for j in range(lpb):
            m.append((f"encoder.down.{i}.block.{j}.", f"encoder.down_blocks.{i}.resnets.{j}."))
        if i < n - 1:
            m.append((f"down.{i}.downsample.", f"down_blocks.{i}.downsamplers.0."))
            m.append((f"up.{n - 1 - i}.upsample.", f"up_blocks.{i}.upsamplers.0."))
        for j in range(lpb + 1):
            m.append((f"decoder.up.{n - 1 - i}.block.{j}.", f"decoder.up_blocks.{i}.resnets.{j}."))
    for i in range(2):
        m.append((f"mid.block_{i + 1}.", f"mid_block.resnets.{i}."))
    return m


VAE_BASE = [("nin_shortcut", "conv_shortcut"), ("norm_out", "conv_norm_out"), ("mid.attn_1.", "mid_block.attentions.0.")]


def convert_sd(unet_sd, unet_cfg, vae_sd, vae_cfg, te_sd, openclip):
    """convert_diffusers_to_original_stable_diffusion.py's __main__, with the tables set for these configs."""
    SD.unet_conversion_map_layer[:] = unet_layer_map(unet_cfg)
    SD.vae_conversion_map[:] = vae_map(vae_cfg, VAE_BASE)
    u = {"model.diffusion_model." + k: v for k, v in SD.convert_unet_state_dict(unet_sd).items()}
    v = {"first_stage_model." + k: v for k, v in SD.convert_vae_state_dict(vae_sd).items()}
    if openclip:
        t = {"transformer." + k: v for k, v in te_sd.items()}
        t = {"cond_stage_model.model." + k: v for k, v in SD.convert_text_enc_state_dict_v20(t).items()}
    else:
        t = {"cond_stage_model.transformer." + k: v for k, v in SD.convert_text_enc_state_dict(te_sd).items()}
    return {**u, **v, **t}


def convert_xl(unet_sd, unet_cfg, vae_sd, vae_cfg, te_sd, te2_sd):
    """convert_diffusers_to_original_sdxl.py's __main__, with the tables set for these configs."""
    XL.unet_conversion_map_layer[:] = unet_layer_map(unet_cfg)
    XL.vae_conversion_map[:] = vae_map(vae_cfg, VAE_BASE)
    u = {"model.diffusion_model." + k: v for k, v in XL.convert_unet_state_dict(unet_sd).items()}
    v = {"first_stage_model." + k: v for k, v in XL.convert_vae_state_dict(vae_sd).items()}
    t = {"conditioner.embedders.0.transformer." + k: v for k, v in XL.convert_openai_text_enc_state_dict(te_sd).items()}
    t2 = {"conditioner.embedders.1.model." + k: v for k, v in XL.convert_openclip_text_enc_state_dict(te2_sd).items()}
    t2["conditioner.embedders.1.model.text_projection"] = t2.pop("conditioner.embedders.1.model.text_projection.weight").T.contiguous()
    return {**u, **v, **t, **t2}


def same(a, b, what):
    ka, kb = set(a), set(b)
    assert ka == kb, f"{what}: keys differ: {sorted(ka ^ kb)[:10]}"
    for k in ka:
        assert a[k].shape == b[k].shape and torch.equal(a[k], b[k]), f"{what}: {k} differs"


def check_with_diffusers(ckpt, unet_sd, unet_cfg, vae_sd, vae_cfg, encoders):
    """diffusers' single-file loader functions must give back every source tensor."""
    same(sfu.convert_ldm_unet_checkpoint(ckpt, unet_cfg), unet_sd, "unet")
    back = sfu.convert_ldm_vae_checkpoint(ckpt, vae_cfg)
    same(back, vae_sd, "vae")
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection
    for kind, folder, sd in encoders:
        if kind == "clip":
            back = {k: v for k, v in sfu.convert_ldm_clip_checkpoint(ckpt).items()
                    if not k.startswith("model.") and not k.startswith("first_stage")}
            back = {k: v for k, v in back.items() if k in sd}
        else:
            c = CLIPTextConfig.from_pretrained(os.path.join(FIX, "models", folder))
            model = (CLIPTextModelWithProjection if "text_projection.weight" in sd else CLIPTextModel)(c)
            back = sfu.convert_open_clip_checkpoint(model, ckpt, prefix=kind)
            back.pop("text_model.embeddings.position_ids", None)
        same(back, sd, folder)


def manifest(state):
    out = {}
    for k in sorted(state):
        t = state[k].contiguous()
        dt = {torch.float32: "F32", torch.float16: "F16"}[t.dtype]
        out[k] = {"dtype": dt, "shape": list(t.shape), "sha256": hashlib.sha256(t.numpy().tobytes()).hexdigest()}
    return out


def emit(name, state, sources):
    half = {k: v.half() for k, v in state.items()}  # the scripts' --half
    doc = {"made_by": "tests/reference/single-file/make_single_file.py (diffusers v0.28.2 conversion scripts)",
           "sources": sources, "diffusers_single_file_roundtrip": "exact",
           "fp32": manifest(state), "fp16": manifest(half)}
    with open(os.path.join(HERE, name + ".keys.json"), "w") as f:
        json.dump(doc, f, indent=0, sort_keys=False)
    if OUT:
        os.makedirs(OUT, exist_ok=True)
        save_file(state, os.path.join(OUT, name + ".safetensors"))
        save_file(half, os.path.join(OUT, name + ".fp16.safetensors"))
    print(name, len(state), "tensors")


def tiny():
    vae_cfg, vae_sd = cfg("vae_tiny"), weights("vae_tiny")
    # sd_tiny: SD 2.x-shaped (linear projections, OpenCLIP-style gelu text encoder)
    u_cfg, u_sd = cfg("unet_sd2_style"), weights("unet_sd2_style")
    te = clip_text_state_dict(os.path.join(FIX, "models", "text_openclip_h_style"))
    ck = convert_sd(u_sd, u_cfg, vae_sd, vae_cfg, te, openclip=True)
    check_with_diffusers(ck, u_sd, u_cfg, vae_sd, vae_cfg, [("cond_stage_model.model.", "text_openclip_h_style", te)])
    emit("sd_tiny", ck, ["unet_sd2_style", "vae_tiny", "text_openclip_h_style"])
    # sd1_tiny: SD 1.x-shaped (1x1-conv projections, CLIP-L-style text encoder)
    u_cfg, u_sd = cfg("unet_sd15_style"), weights("unet_sd15_style")
    te = clip_text_state_dict(os.path.join(FIX, "models", "text_clip_l_style"))
    ck = convert_sd(u_sd, u_cfg, vae_sd, vae_cfg, te, openclip=False)
    check_with_diffusers(ck, u_sd, u_cfg, vae_sd, vae_cfg, [("clip", "text_clip_l_style", te)])
    emit("sd1_tiny", ck, ["unet_sd15_style", "vae_tiny", "text_clip_l_style"])
    # sdxl_tiny
    u_cfg, u_sd = cfg("unet_sdxl_style"), weights("unet_sdxl_style")
    te2 = clip_text_state_dict(os.path.join(FIX, "models", "text_sdxl_text2_style"))
    ck = convert_xl(u_sd, u_cfg, vae_sd, vae_cfg, te, te2)
    check_with_diffusers(ck, u_sd, u_cfg, vae_sd, vae_cfg,
                         [("clip", "text_clip_l_style", te), ("conditioner.embedders.1.model.", "text_sdxl_text2_style", te2)])
    emit("sdxl_tiny", ck, ["unet_sdxl_style", "vae_tiny", "text_clip_l_style", "text_sdxl_text2_style"])


# ---- full size: names and shapes only (meta tensors) ----
def arch(name):
    with open(os.path.join(FIX, "arch", name + ".json")) as f:
        d = json.load(f)
    return {k: torch.empty(s, device="meta") for k, s in d["state_dict"].items()}


def with_text_model_prefix(sd):
    return sd if any(k.startswith("text_model.") for k in sd) else {"text_model." + k: v for k, v in sd.items()}


def shapes(state):
    return {k: list(state[k].shape) for k in sorted(state)}


def fullsize():
    vae = arch("vae_sd")
    # The scripts' tables are the full-size ones again: reload the modules.
    sd, xl = load_script("convert_diffusers_to_original_stable_diffusion"), load_script("convert_diffusers_to_original_sdxl")
    def sd_file(unet, te, openclip):
        u = {"model.diffusion_model." + k: v for k, v in sd.convert_unet_state_dict(unet).items()}
        v = {"first_stage_model." + k: v for k, v in sd.convert_vae_state_dict(vae).items()}
        if openclip:
            t = {"transformer." + k: v for k, v in te.items()}
            t = {"cond_stage_model.model." + k: v for k, v in sd.convert_text_enc_state_dict_v20(t).items()}
        else:
            t = {"cond_stage_model.transformer." + k: v for k, v in te.items()}
        return {**u, **v, **t}
    f15 = sd_file(arch("unet_sd15"), with_text_model_prefix(arch("text_clip_vit_l14")), False)
    te_h = with_text_model_prefix(arch("text_openclip_vit_h14_sd2"))
    assert "text_model.encoder.layers.22.layer_norm2.bias" in te_h  # the script's own SD 2 test
    f21 = sd_file(arch("unet_sd21_base"), te_h, True)
    # what real SD 2.x files also hold: the 24th OpenCLIP layer and the projection (diffusers ignores them)
    for k in sfu.SD_2_TEXT_ENCODER_KEYS_TO_IGNORE:
        src = k.replace(".23.", ".22.")
        f21[k] = torch.empty(1024, 1024, device="meta") if k.endswith("text_projection") else f21[src]
    u = {"model.diffusion_model." + k: v for k, v in xl.convert_unet_state_dict(arch("unet_sdxl")).items()}
    v = {"first_stage_model." + k: v for k, v in xl.convert_vae_state_dict(vae).items()}
    t = {"conditioner.embedders.0.transformer." + k: v
         for k, v in xl.convert_openai_text_enc_state_dict(with_text_model_prefix(arch("text_clip_vit_l14"))).items()}
    t2 = {"conditioner.embedders.1.model." + k: v
          for k, v in xl.convert_openclip_text_enc_state_dict(arch("text_openclip_vit_bigg14_sdxl")).items()}
    t2["conditioner.embedders.1.model.text_projection"] = t2.pop("conditioner.embedders.1.model.text_projection.weight").T
    fxl = {**u, **v, **t, **t2}
    for name, state in [("sd15", f15), ("sd21", f21), ("sdxl", fxl)]:
        with open(os.path.join(HERE, f"fullsize_{name}.json"), "w") as f:
            json.dump(shapes(state), f, indent=0)
        print("fullsize", name, len(state), "keys")


if __name__ == "__main__":
    torch.manual_seed(0)
    tiny()
    fullsize()
