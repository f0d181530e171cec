"""Reference data for the self-cascade's img2img stage on every scheduler we offer, SD and SDXL, from diffusers 0.28.2.

Run (from the worktree root, with the shared reference environment; takes a few minutes on 2 cores):
    OMP_WAIT_POLICY=PASSIVE ../shared/refenv/python tests/reference/img2img/make_img2img.py
It reads the tiny models of ../shared/fixtures/diffusers-parity (the same networks and tokenizers as
tests/SelfCascade.Tests/Support/TinyModelFolders.cs builds; the scheduler configs are SD_SCHED and SDXL_SCHED below)
and writes, next to this script:
    img2img.safetensors, img2img.json
Nothing under ../shared is written. CI never runs this script; the tests read the committed data.

What each tensor means (M = sd | sdxl, S = ddim, pndm, euler, euler-a, dpm++2m, dpm++2m-karras, lms, unipc, ddpm,
P = 60 | 30 for strength 0.6 | 0.3):
  M_S_base            stage 0: diffusers' text-to-image pipeline (StableDiffusionPipeline / StableDiffusionXLPipeline)
                      at 32x32, 10 steps, CPU generator seed 0, output_type="latent" (scaled latent space), with the
                      scheduler S made as `S.from_config(pipe.scheduler.config, **overrides)` over the folder's
                      scheduler (what `--scheduler S` means: see SchedulerFactory.Create(name, config)).
  M_S_sP_start        stage 1's re-noised pivot: pivot = interpolate(M_S_base, scale_factor=2, bilinear,
                      align_corners=False); set_timesteps(10); timesteps = get_timesteps(10, strength) (which also
                      calls set_begin_index where the scheduler has it); add_noise(pivot, randn(pivot.shape, generator
                      seed 1), timesteps[:1]). Exactly what the img2img pipeline's prepare_latents computes.
  M_S_sP_latents      stage 1: diffusers' img2img pipeline (StableDiffusionImg2ImgPipeline /
                      StableDiffusionXLImg2ImgPipeline) on that latent pivot (image=pivot, 4 channels = latents), strength
                      P/100, 10 steps, generator seed 1 (the cascade's stage r draws from seed + r), output_type="latent".
  M_euler-a_s60_image the same stage decoded by the pipeline (output_type="pt", in [0, 1]).
Prompt "a photo of a red circle", negative prompt None (SDXL: force_zeros_for_empty_prompt), guidance 7.5 (SD) and
5.0 (SDXL), as pipelines/sd_tiny and pipelines/sdxl_tiny. img2img.json lists the timesteps of each run and the
scheduler configs.
"""
import json, os, sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.normpath(os.path.join(HERE, "..", "..", "..", "..", "shared", "fixtures", "diffusers-parity"))
if not os.path.isdir(FIX):  # worktrees sit at /work/wt-NAME, the main checkout at /work/main
    FIX = "/work/shared/fixtures/diffusers-parity"
torch.set_num_threads(2)

PROMPT, STEPS = "a photo of a red circle", 10
STRENGTHS = {"60": 0.6, "30": 0.3}
# The folder scheduler configs. SD: the one TinyModelFolders writes (pipelines/sd_tiny's DDIM). SDXL: the
# scheduler_config.json that stable-diffusion-xl-base-1.0 ships (Euler, leading, and the keys a switch to DDIM/DDPM/PNDM
# reads: clip_sample false, set_alpha_to_one false). TinyModelFolders' shorter SDXL config lacks clip_sample, so DDIM
# and DDPM would clip x0 to [-1, 1]; with the tiny random UNet that run is chaotic (a 1e-6 relative change of the
# initial noise moves diffusers' own DDIM result by 6e-3) and could not tell a right implementation from a wrong one.
SD_SCHED = {"_class_name": "DDIMScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
            "beta_schedule": "scaled_linear", "clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1}
SDXL_SCHED = {"_class_name": "EulerDiscreteScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
              "beta_start": 0.00085, "clip_sample": False, "interpolation_type": "linear", "num_train_timesteps": 1000,
              "prediction_type": "epsilon", "sample_max_value": 1.0, "set_alpha_to_one": False, "skip_prk_steps": True,
              "steps_offset": 1, "timestep_spacing": "leading", "trained_betas": None, "use_karras_sigmas": False}
# CLI name -> (diffusers class, from_config overrides), as SchedulerFactory.Create(name, config).
SCHEDULERS = {
    "ddim": ("DDIMScheduler", {}),
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler-a": ("EulerAncestralDiscreteScheduler", {}),
    "dpm++2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": False}),
    "dpm++2m-karras": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}),
    "lms": ("LMSDiscreteScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
}


def p(*parts):
    return os.path.join(FIX, *parts)


def gen(seed):
    return torch.Generator("cpu").manual_seed(seed)


def components():
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTokenizer
    from refenv_compat import load_clip_text  # the shared refenv shim: strict loader for transformers-5 folders
    tok_eos, tok_bang = CLIPTokenizer.from_pretrained(p("tokenizer", "pad_eos")), CLIPTokenizer.from_pretrained(p("tokenizer", "pad_bang"))
    vae = AutoencoderKL.from_pretrained(p("models", "vae_tiny")).eval()
    sd = dict(vae=vae, text_encoder=load_clip_text(p("models", "text_openclip_h_style")), tokenizer=tok_bang,
              unet=UNet2DConditionModel.from_pretrained(p("models", "unet_sd2_style")).eval())
    sdxl = dict(vae=vae, text_encoder=load_clip_text(p("models", "text_clip_l_style")),
                text_encoder_2=load_clip_text(p("models", "text_sdxl_text2_style")), tokenizer=tok_eos, tokenizer_2=tok_bang,
                unet=UNet2DConditionModel.from_pretrained(p("models", "unet_sdxl_style")).eval())
    return sd, sdxl


def make_pipes(model, comps, scheduler):
    import diffusers
    if model == "sd":
        kw = dict(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        t2i = diffusers.StableDiffusionPipeline(scheduler=scheduler, **comps, **kw)
        i2i = diffusers.StableDiffusionImg2ImgPipeline(scheduler=scheduler, **comps, **kw)
    else:
        t2i = diffusers.StableDiffusionXLPipeline(scheduler=scheduler, add_watermarker=False, **comps)
        i2i = diffusers.StableDiffusionXLImg2ImgPipeline(scheduler=scheduler, add_watermarker=False,
                                                         requires_aesthetics_score=False, **comps)
    for pipe in (t2i, i2i):
        pipe.set_progress_bar_config(disable=True)
    return t2i, i2i


def jsonable(v):
    """Strict JSON (no Infinity/NaN literals, which System.Text.Json refuses): non-finite floats become strings."""
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, float) and v != v or v in (float("inf"), float("-inf")):
        return str(v)
    return v


def main():
    import diffusers, transformers
    sd, sdxl = components()
    tensors, facts = {}, {"versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                                       "transformers": transformers.__version__},
                          "prompt": PROMPT, "negative_prompt": None, "steps": STEPS, "base_size": [32, 32],
                          "stage_size": [64, 64], "base_seed": 0, "stage_seed": 1,
                          "folder_scheduler_configs": {"sd": SD_SCHED, "sdxl": SDXL_SCHED}, "runs": {}}
    for model, comps, folder_cfg, cfg_scale in (("sd", sd, SD_SCHED, 7.5), ("sdxl", sdxl, SDXL_SCHED, 5.0)):
        folder_sched = getattr(diffusers, folder_cfg["_class_name"]).from_config(folder_cfg)
        for name, (cls, overrides) in SCHEDULERS.items():
            scheduler = getattr(diffusers, cls).from_config(folder_sched.config, **overrides)
            t2i, i2i = make_pipes(model, comps, scheduler)
            key = f"{model}_{name}"
            cache = os.environ.get("IMG2IMG_CACHE")  # optional folder of finished runs (a rerun skips them)
            if cache and os.path.exists(os.path.join(cache, key + ".json")):
                tensors.update(load_file(os.path.join(cache, key + ".safetensors")))
                facts["runs"][key] = json.load(open(os.path.join(cache, key + ".json")))
                continue
            run = {"class": cls, "config": {k: v for k, v in scheduler.config.items() if not k.startswith("_")},
                   "guidance_scale": cfg_scale}
            with torch.no_grad():
                base = t2i(PROMPT, height=32, width=32, num_inference_steps=STEPS, guidance_scale=cfg_scale,
                           generator=gen(0), output_type="latent").images
                tensors[f"{key}_base"] = base
                run["base_timesteps"] = [float(t) for t in t2i.scheduler.timesteps]
                pivot = F.interpolate(base, scale_factor=2, mode="bilinear", align_corners=False)
                for tag, strength in STRENGTHS.items():
                    # prepare_latents' re-noised pivot, computed as the pipeline does it
                    i2i.scheduler.set_timesteps(STEPS)
                    ts, n = i2i.get_timesteps(STEPS, strength, "cpu")
                    start = i2i.scheduler.add_noise(pivot, torch.randn(pivot.shape, generator=gen(1)), ts[:1])
                    tensors[f"{key}_s{tag}_start"] = start
                    out = i2i(PROMPT, image=pivot, strength=strength, num_inference_steps=STEPS, guidance_scale=cfg_scale,
                              generator=gen(1), output_type="latent").images
                    tensors[f"{key}_s{tag}_latents"] = out
                    run[f"s{tag}_timesteps"] = [float(t) for t in ts]
                    if name == "euler-a" and tag == "60":
                        img = i2i(PROMPT, image=pivot, strength=strength, num_inference_steps=STEPS,
                                  guidance_scale=cfg_scale, generator=gen(1), output_type="pt").images
                        tensors[f"{key}_s{tag}_image"] = img
                    print(f"{key} s{tag}: {len(ts)} steps from t={float(ts[0]):.1f}, max|latents| = {out.abs().max():.3f}",
                          flush=True)
            facts["runs"][key] = run
            if cache:
                os.makedirs(cache, exist_ok=True)
                save_file({k: v.contiguous().float() for k, v in tensors.items() if k.startswith(key + "_")},
                          os.path.join(cache, key + ".safetensors"))
                with open(os.path.join(cache, key + ".json"), "w") as f:
                    json.dump(run, f, default=str)
    save_file({k: v.detach().contiguous().float() for k, v in tensors.items()}, os.path.join(HERE, "img2img.safetensors"))
    with open(os.path.join(HERE, "img2img.json"), "w") as f:
        json.dump(jsonable(facts), f, indent=1, default=str, allow_nan=False)


if __name__ == "__main__":
    main()
