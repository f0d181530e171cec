"""Writes the built-in full-size configs (src/SelfCascade/Checkpoints/Configs/*.json) a single file loads with.

Run from the repository root (plain python3, no packages): python3 tests/reference/single-file/make_builtin_configs.py
UNet, VAE and text-encoder configs are the ones of ../shared/fixtures/diffusers-parity/arch (the hub configs of
runwayml/stable-diffusion-v1-5, stabilityai/stable-diffusion-2-1-base, stabilityai/stable-diffusion-xl-base-1.0,
openai/clip-vit-large-patch14 and the OpenCLIP text towers, as diffusers/transformers load them); the per-model
differences are the hub repositories' own config values, written out below:
- SD 2.1 (768, v-prediction): unet sample_size 96 and upcast_attention true, vae sample_size 768, DDIM scheduler
  with prediction_type v_prediction (stabilityai/stable-diffusion-2-1); SD 2.1-base: PNDM, epsilon.
- SDXL base: vae scaling_factor 0.13025, sample_size 1024, force_upcast true; Euler (leading) scheduler;
  force_zeros_for_empty_prompt true.
- Tokenizers: CLIP's BPE (shipped once, Configs/clip/) with pad <|endoftext|> (SD 1.x, SDXL tokenizer) or "!"
  (SD 2.x, SDXL tokenizer_2).
"""
import copy
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
ARCH = os.path.normpath(os.path.join(ROOT, "..", "shared", "fixtures", "diffusers-parity", "arch"))
OUT = os.path.join(ROOT, "src", "SelfCascade", "Checkpoints", "Configs")
DROP = {"_use_default_values", "_name_or_path", "id2label", "label2id", "output_hidden_states", "return_dict", "dtype",
        "chunk_size_feed_forward", "is_encoder_decoder", "problem_type", "output_attentions", "transformers_version"}


def arch(name, cls=None):
    with open(os.path.join(ARCH, name + ".json")) as f:
        c = {k: v for k, v in json.load(f)["config"].items() if k not in DROP}
    if cls:
        c["architectures"] = [cls]
    return c


def tok(pad):
    specials = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": pad}
    return {"special_tokens_map": specials,
            "tokenizer_config": {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True, **specials}}


SCHED = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
         "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "clip_sample": False, "trained_betas": None}
pndm = {"_class_name": "PNDMScheduler", **SCHED, "prediction_type": "epsilon"}
ddim_v = {"_class_name": "DDIMScheduler", **SCHED, "prediction_type": "v_prediction"}
euler = {"_class_name": "EulerDiscreteScheduler", **SCHED, "prediction_type": "epsilon", "interpolation_type": "linear",
         "timestep_spacing": "leading", "use_karras_sigmas": False, "sample_max_value": 1.0}

vae = arch("vae_sd")
vae.update({"_class_name": "AutoencoderKL", "scaling_factor": 0.18215, "force_upcast": True})
vae768 = dict(vae, sample_size=768)
vaexl = dict(vae, sample_size=1024, scaling_factor=0.13025, force_upcast=True)
u15 = dict(arch("unet_sd15"), _class_name="UNet2DConditionModel")
u21 = dict(arch("unet_sd21_base"), _class_name="UNet2DConditionModel")
u21v = dict(u21, sample_size=96, upcast_attention=True)
uxl = dict(arch("unet_sdxl"), _class_name="UNet2DConditionModel")
clip_l = arch("text_clip_vit_l14", "CLIPTextModel")
clip_h = arch("text_openclip_vit_h14_sd2", "CLIPTextModel")
clip_g = arch("text_openclip_vit_bigg14_sdxl", "CLIPTextModelWithProjection")


def sd(name, unet, v, te, sched, pad, prediction):
    return {"name": name, "prediction_type": prediction,
            "model_index": {"_class_name": "StableDiffusionPipeline", "requires_safety_checker": False},
            "unet": unet, "vae": v, "text_encoder": te, "scheduler": sched, "tokenizer": tok(pad)}


models = {
    "sd15": sd("SD 1.5", u15, vae, clip_l, pndm, "<|endoftext|>", "epsilon"),
    "sd21-base": sd("SD 2.1-base (512, epsilon)", u21, vae, clip_h, pndm, "!", "epsilon"),
    "sd21-v": sd("SD 2.1 (768, v-prediction)", u21v, vae768, clip_h, ddim_v, "!", "v_prediction"),
    "sdxl-base": {"name": "SDXL base 1.0", "prediction_type": "epsilon",
                  "model_index": {"_class_name": "StableDiffusionXLPipeline", "force_zeros_for_empty_prompt": True},
                  "unet": uxl, "vae": vaexl, "text_encoder": clip_l, "text_encoder_2": clip_g, "scheduler": euler,
                  "tokenizer": tok("<|endoftext|>"), "tokenizer_2": tok("!")},
}
for k, v in models.items():
    with open(os.path.join(OUT, k + ".json"), "w") as f:
        json.dump(v, f, indent=1)
        f.write("\n")
    print(k)
