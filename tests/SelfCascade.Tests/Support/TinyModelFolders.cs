using System.Text.Json;

namespace SelfCascade.Tests.Support;

/// <summary>
/// Diffusers pipeline folders assembled from the fixture components, exactly as pipelines/sd_tiny and
/// pipelines/sdxl_tiny were made (README.json there): the same networks, tokenizers and scheduler config.
/// </summary>
public static class TinyModelFolders
{
    private const string SdSchedulerJson = """
        { "_class_name": "DDIMScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
          "beta_schedule": "scaled_linear", "clip_sample": false, "set_alpha_to_one": false, "steps_offset": 1 }
        """;

    private const string SdxlSchedulerJson = """
        { "_class_name": "EulerDiscreteScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
          "beta_schedule": "scaled_linear", "steps_offset": 1, "timestep_spacing": "leading" }
        """;

    /// <summary>SD 2.x-style: unet_sd2_style, vae_tiny, text_openclip_h_style, tokenizer pad '!', DDIM.</summary>
    public static string BuildSd(string dir)
    {
        Directory.CreateDirectory(dir);
        Copy(Fixtures.ParityPath("models", "unet_sd2_style"), Path.Combine(dir, "unet"));
        Copy(Fixtures.ParityPath("models", "vae_tiny"), Path.Combine(dir, "vae"));
        Copy(Fixtures.ParityPath("models", "text_openclip_h_style"), Path.Combine(dir, "text_encoder"));
        Copy(Fixtures.ParityPath("tokenizer", "pad_bang"), Path.Combine(dir, "tokenizer"));
        Directory.CreateDirectory(Path.Combine(dir, "scheduler"));
        File.WriteAllText(Path.Combine(dir, "scheduler", "scheduler_config.json"), SdSchedulerJson);
        WriteIndex(dir, "StableDiffusionPipeline", new()
        {
            ["unet"] = ["diffusers", "UNet2DConditionModel"], ["vae"] = ["diffusers", "AutoencoderKL"],
            ["text_encoder"] = ["transformers", "CLIPTextModel"], ["tokenizer"] = ["transformers", "CLIPTokenizer"],
            ["scheduler"] = ["diffusers", "DDIMScheduler"], ["safety_checker"] = [null, null],
        });
        return dir;
    }

    /// <summary>SD 1.x-style (no pipeline fixture): unet_sd15_style, vae_tiny, text_clip_l_style, tokenizer pad eos, DDIM.</summary>
    public static string BuildSd1(string dir)
    {
        Directory.CreateDirectory(dir);
        Copy(Fixtures.ParityPath("models", "unet_sd15_style"), Path.Combine(dir, "unet"));
        Copy(Fixtures.ParityPath("models", "vae_tiny"), Path.Combine(dir, "vae"));
        Copy(Fixtures.ParityPath("models", "text_clip_l_style"), Path.Combine(dir, "text_encoder"));
        Copy(Fixtures.ParityPath("tokenizer", "pad_eos"), Path.Combine(dir, "tokenizer"));
        Directory.CreateDirectory(Path.Combine(dir, "scheduler"));
        File.WriteAllText(Path.Combine(dir, "scheduler", "scheduler_config.json"), SdSchedulerJson);
        WriteIndex(dir, "StableDiffusionPipeline", new()
        {
            ["unet"] = ["diffusers", "UNet2DConditionModel"], ["vae"] = ["diffusers", "AutoencoderKL"],
            ["text_encoder"] = ["transformers", "CLIPTextModel"], ["tokenizer"] = ["transformers", "CLIPTokenizer"],
            ["scheduler"] = ["diffusers", "DDIMScheduler"],
        });
        return dir;
    }

    /// <summary>SDXL-style: unet_sdxl_style, vae_tiny, text_clip_l_style + text_sdxl_text2_style, Euler (leading).</summary>
    public static string BuildSdxl(string dir)
    {
        Directory.CreateDirectory(dir);
        Copy(Fixtures.ParityPath("models", "unet_sdxl_style"), Path.Combine(dir, "unet"));
        Copy(Fixtures.ParityPath("models", "vae_tiny"), Path.Combine(dir, "vae"));
        Copy(Fixtures.ParityPath("models", "text_clip_l_style"), Path.Combine(dir, "text_encoder"));
        Copy(Fixtures.ParityPath("models", "text_sdxl_text2_style"), Path.Combine(dir, "text_encoder_2"));
        Copy(Fixtures.ParityPath("tokenizer", "pad_eos"), Path.Combine(dir, "tokenizer"));
        Copy(Fixtures.ParityPath("tokenizer", "pad_bang"), Path.Combine(dir, "tokenizer_2"));
        Directory.CreateDirectory(Path.Combine(dir, "scheduler"));
        File.WriteAllText(Path.Combine(dir, "scheduler", "scheduler_config.json"), SdxlSchedulerJson);
        WriteIndex(dir, "StableDiffusionXLPipeline", new()
        {
            ["unet"] = ["diffusers", "UNet2DConditionModel"], ["vae"] = ["diffusers", "AutoencoderKL"],
            ["text_encoder"] = ["transformers", "CLIPTextModel"], ["text_encoder_2"] = ["transformers", "CLIPTextModelWithProjection"],
            ["tokenizer"] = ["transformers", "CLIPTokenizer"], ["tokenizer_2"] = ["transformers", "CLIPTokenizer"],
            ["scheduler"] = ["diffusers", "EulerDiscreteScheduler"],
        }, forceZeros: true);
        return dir;
    }

    private static void WriteIndex(string dir, string cls, Dictionary<string, string?[]> comps, bool? forceZeros = null)
    {
        var index = new Dictionary<string, object?> { ["_class_name"] = cls, ["_diffusers_version"] = "0.40.0.dev0" };
        foreach (var (k, v) in comps) index[k] = v;
        if (forceZeros is bool f) index["force_zeros_for_empty_prompt"] = f;
        File.WriteAllText(Path.Combine(dir, "model_index.json"), JsonSerializer.Serialize(index));
    }

    private static void Copy(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from))
        {
            // io.safetensors holds the fixture's inputs/outputs, not part of a model folder.
            if (Path.GetFileName(f) == "io.safetensors") continue;
            File.Copy(f, Path.Combine(to, Path.GetFileName(f)), overwrite: true);
        }
    }
}
