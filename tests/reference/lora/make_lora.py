"""Makes the LoRA reference data (tests/reference/lora/).

Run from the repository root with the reference environment (diffusers 0.28.2, torch 1.13, no peft):
    ../shared/refenv/python tests/reference/lora/make_lora.py

diffusers 0.28's load_lora_weights/fuse_lora need `peft`, which refenv lacks. So the names are resolved by
diffusers' own `LoraLoaderMixin.lora_state_dict` (its kohya -> diffusers conversion, lora_conversion_utils.py) and
the merge is the kohya formula computed here:  W += scale * alpha / rank * up @ down  (conv: up and down flattened
to matrices, the product reshaped to W's shape; alpha = rank when the file has none).

Models: the fixture networks of ../shared/fixtures/diffusers-parity (unet_sd2_style + text_openclip_h_style for SD;
unet_sdxl_style + text_clip_l_style + text_sdxl_text2_style for SDXL).

Files written:
  sd_kohya.safetensors      kohya/A1111 names (lora_unet_*, lora_te_*), .alpha on most modules, linear + conv
                            (LoCon: 3x3 down with 1x1 up), some tensors fp16
  sd_peft.safetensors       diffusers/PEFT names (unet.*.lora_A/lora_B, text_encoder.*), no alphas (alpha/rank folded
                            into lora_B); UNet attention modules and the text encoder only
  sd_diffusers_old.safetensors  older diffusers names (…processor.to_q_lora.down.weight, …lora_linear_layer.up.weight)
                            exactly as diffusers' converter writes them, no alphas; attention + text encoder only
  sdxl_kohya.safetensors    lora_unet_*, lora_te1_*, lora_te2_* for the SDXL-style networks
  reference.safetensors     for each file F and scale 0.75: F/unet_out (UNet output on the fixed inputs below),
                            F/te_out (and F/te2_out: last hidden state of the fixed ids), F/w/<module> for a few fused
                            weights; the inputs unet_sample, unet_timestep, unet_states (and SDXL's text_embeds,
                            time_ids), te_ids; and sd_kohya/image_out: the sd_tiny pipeline (10 DDIM steps, 32x32,
                            seed 0, "a photo of a red circle", guidance 7.5) with sd_kohya fused at scale 0.75.
"""
import os, re
import torch
from safetensors.torch import save_file, load_file

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "..", "..", "..", "shared", "fixtures", "diffusers-parity")
if not os.path.isdir(FIX):
    FIX = os.path.join(os.getcwd(), "..", "shared", "fixtures", "diffusers-parity")
torch.set_num_threads(2)
SCALE = 0.75

from diffusers import UNet2DConditionModel, AutoencoderKL, DDIMScheduler, StableDiffusionPipeline
from diffusers.loaders import LoraLoaderMixin
from transformers import CLIPTokenizer
from refenv_compat import load_clip_text


def p(*parts):
    return os.path.join(FIX, *parts)


def targets(model, prefixes):
    """Linear and Conv2d modules under the given path prefixes (what LoCon-style trainers adapt)."""
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)) and any(name.startswith(pr) for pr in prefixes):
            out[name] = m
    return out


def make_kohya(gen, unet_mods, te_mods, te_prefix_names, rank=2, conv_rank=2):
    sd = {}
    for path, m in unet_mods.items():
        k = "lora_unet_" + path.replace(".", "_")
        add_pair(sd, k, m, gen, rank, conv_rank)
    for (prefix, mods) in zip(te_prefix_names, te_mods):
        for path, m in mods.items():
            add_pair(sd, prefix + path.replace(".", "_"), m, gen, rank, conv_rank)
    return sd


def add_pair(sd, k, m, gen, rank, conv_rank):
    i = len(sd)
    if isinstance(m, torch.nn.Conv2d):
        kh, kw = m.kernel_size
        r = conv_rank
        down = torch.randn(r, m.in_channels, kh, kw, generator=gen) * 0.2
        up = torch.randn(m.out_channels, r, 1, 1, generator=gen) * 0.2
    else:
        r = rank
        down = torch.randn(r, m.in_features, generator=gen) * 0.2
        up = torch.randn(m.out_features, r, generator=gen) * 0.2
    if i % 7 == 3:  # some tensors stored in fp16, as many shared files are
        down, up = down.half(), up.half()
    sd[k + ".lora_down.weight"] = down
    sd[k + ".lora_up.weight"] = up
    if i % 5 != 1:  # most modules carry an alpha; a few do not (alpha = rank)
        sd[k + ".alpha"] = torch.tensor(float(1 + (i % 3)))


def diffusers_module(name):
    """diffusers-converted LoRA key -> (component, module path)."""
    comp, rest = name.split(".", 1)
    for suffix in (".lora.down.weight", ".lora.up.weight", ".lora_linear_layer.down.weight", ".lora_linear_layer.up.weight",
                   ".down.weight", ".up.weight"):
        if rest.endswith(suffix):
            rest = rest[: -len(suffix)]
            break
    unet_proc = {"processor.to_q_lora": "to_q", "processor.to_k_lora": "to_k", "processor.to_v_lora": "to_v",
                 "processor.to_out_lora": "to_out.0"}
    te = {"to_q_lora": "q_proj", "to_k_lora": "k_proj", "to_v_lora": "v_proj", "to_out_lora": "out_proj"}
    head, _, last = rest.rpartition(".")
    if comp == "unet":
        for k, v in unet_proc.items():
            if rest.endswith(k):
                return comp, rest[: -len(k)] + v
        return comp, rest
    if last in te:
        return comp, head + "." + te[last]
    return comp, rest


def merge_kohya(file_sd, nets, unet_config=None):
    """Resolves names with diffusers' converter, then fuses with the kohya formula. Returns {(comp, path): delta}."""
    conv, alphas = LoraLoaderMixin.lora_state_dict({k: v.clone() for k, v in file_sd.items()}, unet_config=unet_config)
    return fuse(conv, alphas or {}, nets, converted_names=True)


def fuse(conv, alphas, nets, converted_names):
    pairs = {}
    for k, v in conv.items():
        if k.endswith(".alpha"):
            continue
        comp, path = diffusers_module(k) if converted_names else peft_module(k)
        kind = "down" if (".down." in k or "lora_A" in k) else "up"
        pairs.setdefault((comp, path), {})[kind] = v.float()
        if kind == "down":  # diffusers names the alpha after the down weight's converted name
            pairs[(comp, path)]["key"] = k
    fused = {}
    with torch.no_grad():
        for (comp, path), d in pairs.items():
            m = dict(nets[comp].named_modules())[path]  # KeyError if diffusers' name is not a module
            down, up = d["down"], d["up"]
            rank = down.shape[0]
            alpha = alpha_for(alphas, comp, d["key"], rank)
            delta = (up.reshape(up.shape[0], -1) @ down.reshape(rank, -1)).reshape(m.weight.shape)
            m.weight += SCALE * (alpha / rank) * delta
            fused[(comp, path)] = m.weight.detach().clone()
    return fused


def alpha_for(alphas, comp, key, rank):
    # diffusers names alphas as prefix + name.split(".lora.")[0] + ".alpha"
    cands = [comp + "." + key.split(".", 1)[1].split(".lora.")[0] + ".alpha"]
    for c in cands:
        if c in alphas:
            return float(alphas[c])
    return float(rank)


def peft_module(k):
    comp, rest = k.split(".", 1)
    return comp, rest.rsplit(".lora_", 1)[0]


def to_peft(file_sd, conv):
    """The same LoRA as diffusers/PEFT keys (lora_A = down, lora_B = up with alpha/rank folded in, no alphas)."""
    out = {}
    _, alphas = conv
    down_key = {diffusers_module(k): k for k in conv[0] if ".down." in k}
    for k, v in conv[0].items():
        comp, path = diffusers_module(k)
        if comp == "unet" and ".attentions." not in path:
            continue  # PEFT files usually adapt attention only (and this keeps the data small)
        if ".down." in k:
            out[f"{comp}.{path}.lora_A.weight"] = v.float()
        else:
            rank = v.shape[1]
            out[f"{comp}.{path}.lora_B.weight"] = v.float() * (alpha_for(alphas or {}, comp, down_key[(comp, path)], rank) / rank)
    return out


def main():
    gen = torch.Generator().manual_seed(0)
    ref = {}
    io = load_file(p("models", "unet_sd2_style", "io.safetensors"))
    sample, t, states = io["c0_sample"], io["c0_timestep"], io["c0_encoder_hidden_states"]
    ref["unet_sample"], ref["unet_timestep"], ref["unet_states"] = sample, t.float().reshape(-1), states
    te_ids = torch.tensor([[49406, 320, 1125, 539, 320, 736, 7117, 49407] + [0] * 69])
    ref["te_ids"] = te_ids.float()

    def sd_nets():
        return {"unet": UNet2DConditionModel.from_pretrained(p("models", "unet_sd2_style")).eval(),
                "text_encoder": load_clip_text(p("models", "text_openclip_h_style"))}

    nets = sd_nets()
    unet_mods = targets(nets["unet"], ("down_blocks", "mid_block", "up_blocks"))
    te_mods = targets(nets["text_encoder"], ("text_model.encoder.layers",))
    kohya = make_kohya(gen, unet_mods, [te_mods], ["lora_te_"])
    save_file(kohya, os.path.join(HERE, "sd_kohya.safetensors"))
    conv = LoraLoaderMixin.lora_state_dict({k: v.clone() for k, v in kohya.items()})
    save_file(to_peft(kohya, conv), os.path.join(HERE, "sd_peft.safetensors"))
    old = {k: v.float().contiguous() for k, v in conv[0].items() if not k.startswith("unet.") or ".attentions." in k}
    save_file(old, os.path.join(HERE, "sd_diffusers_old.safetensors"))

    watch = ["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q", "down_blocks.0.resnets.0.conv1",
             "up_blocks.1.attentions.0.proj_out", "text_model.encoder.layers.0.mlp.fc1"]

    def record(tag, nets, fused, te_keys=("text_encoder",)):
        with torch.no_grad():
            ref[f"{tag}/unet_out"] = nets["unet"](sample, t, encoder_hidden_states=states).sample
            for i, comp in enumerate(te_keys):
                ref[f"{tag}/{'te' if i == 0 else 'te2'}_out"] = nets[comp](te_ids).last_hidden_state
        for (comp, path), w in fused.items():
            if path in watch:
                ref[f"{tag}/w/{comp}.{path}"] = w

    record("sd_kohya", nets, merge_kohya(kohya, nets))
    nets = sd_nets()
    peft = load_file(os.path.join(HERE, "sd_peft.safetensors"))
    record("sd_peft", nets, fuse(peft, {}, nets, converted_names=False))
    nets = sd_nets()
    record("sd_diffusers_old", nets, fuse(old, {}, nets, converted_names=True))

    # The sd_tiny pipeline with sd_kohya fused.
    nets = sd_nets()
    merge_kohya(kohya, nets)
    SDS = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    pipe = StableDiffusionPipeline(vae=AutoencoderKL.from_pretrained(p("models", "vae_tiny")).eval(),
                                   text_encoder=nets["text_encoder"], tokenizer=CLIPTokenizer.from_pretrained(p("tokenizer", "pad_bang")),
                                   unet=nets["unet"], scheduler=DDIMScheduler(**SDS, clip_sample=False, set_alpha_to_one=False, steps_offset=1),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    ref["sd_kohya/image_out"] = pipe("a photo of a red circle", generator=torch.Generator("cpu").manual_seed(0), output_type="pt",
                                     height=32, width=32, num_inference_steps=10, guidance_scale=7.5).images

    # SDXL: UNet + both text encoders.
    iox = load_file(p("models", "unet_sdxl_style", "io.safetensors"))
    ref["sdxl_unet_sample"], ref["sdxl_unet_states"] = iox["c0_sample"], iox["c0_encoder_hidden_states"]
    ref["sdxl_text_embeds"], ref["sdxl_time_ids"] = iox["c0_text_embeds"], iox["c0_time_ids"]
    ref["sdxl_unet_timestep"] = iox["c0_timestep"].float().reshape(-1)
    nx = {"unet": UNet2DConditionModel.from_pretrained(p("models", "unet_sdxl_style")).eval(),
          "text_encoder": load_clip_text(p("models", "text_clip_l_style")),
          "text_encoder_2": load_clip_text(p("models", "text_sdxl_text2_style"))}
    kx = make_kohya(gen, targets(nx["unet"], ("down_blocks", "mid_block", "up_blocks")),
                    [targets(nx["text_encoder"], ("text_model.encoder.layers",)),
                     targets(nx["text_encoder_2"], ("text_model.encoder.layers",))], ["lora_te1_", "lora_te2_"])
    save_file(kx, os.path.join(HERE, "sdxl_kohya.safetensors"))
    fused = merge_kohya(kx, nx)
    with torch.no_grad():
        ref["sdxl_kohya/unet_out"] = nx["unet"](iox["c0_sample"], iox["c0_timestep"], encoder_hidden_states=iox["c0_encoder_hidden_states"],
                                                added_cond_kwargs={"text_embeds": iox["c0_text_embeds"], "time_ids": iox["c0_time_ids"]}).sample
        ref["sdxl_kohya/te_out"] = nx["text_encoder"](te_ids).last_hidden_state
        ref["sdxl_kohya/te2_out"] = nx["text_encoder_2"](te_ids).last_hidden_state
    for (comp, path), w in fused.items():
        if path in watch:
            ref[f"sdxl_kohya/w/{comp}.{path}"] = w
    save_file({k: v.contiguous() for k, v in ref.items()}, os.path.join(HERE, "reference.safetensors"))
    for f in sorted(os.listdir(HERE)):
        print(f, os.path.getsize(os.path.join(HERE, f)))


if __name__ == "__main__":
    main()
