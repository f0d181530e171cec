using System.Text.Json;
using System.Text.Json.Nodes;
using SelfCascade.IO;
using SelfCascade.Schedulers;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Training;

/// <summary>
/// Writes a pixel-space model as a diffusers pipeline folder: <c>model_index.json</c> (with <c>"vae": [null, null]</c>:
/// no VAE, the pipeline works on pixels), <c>unet/</c> (config.json + diffusion_pytorch_model.safetensors),
/// <c>text_encoder/</c> (config.json + model.safetensors, transformers 5 key names), <c>tokenizer/</c> (copied),
/// <c>scheduler/scheduler_config.json</c>. Loadable by <c>StableDiffusionPipeline.FromPretrained</c>. The folder is
/// assembled under a temporary name and renamed into place.
/// </summary>
public static class PixelModelExporter
{
    public static void Save(string dir, nn.Module unet, JsonObject unetConfig, nn.Module textEncoder, JsonObject textConfig,
        SchedulerConfig scheduler, string tokenizerDir, ScalarType dtype)
    {
        var final = Path.GetFullPath(dir);
        var tmp = final + ".tmp-" + Environment.ProcessId;
        if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
        Directory.CreateDirectory(tmp);
        try
        {
            var dtypeName = dtype switch { ScalarType.Float16 => "float16", ScalarType.BFloat16 => "bfloat16", _ => "float32" };
            WriteJson(Path.Combine(tmp, "unet", "config.json"), unetConfig);
            SaveWeights(Path.Combine(tmp, "unet", "diffusion_pytorch_model.safetensors"), unet, dtype);
            var text = (JsonObject)textConfig.DeepClone();
            text["dtype"] = dtypeName;
            WriteJson(Path.Combine(tmp, "text_encoder", "config.json"), text);
            SaveWeights(Path.Combine(tmp, "text_encoder", "model.safetensors"), textEncoder, dtype);
            Directory.CreateDirectory(Path.Combine(tmp, "tokenizer"));
            var tokFiles = Directory.GetFiles(tokenizerDir);
            if (tokFiles.Length == 0) throw new ArgumentException($"{tokenizerDir}: tokenizer folder is empty");
            foreach (var f in tokFiles) File.Copy(f, Path.Combine(tmp, "tokenizer", Path.GetFileName(f)));
            WriteJson(Path.Combine(tmp, "scheduler", "scheduler_config.json"), SchedulerJson(scheduler));
            WriteJson(Path.Combine(tmp, "model_index.json"), new JsonObject
            {
                ["_class_name"] = "StableDiffusionPipeline",
                ["_diffusers_version"] = "0.40.0.dev0",
                ["_selfcascade_pixel_space"] = true,
                ["unet"] = new JsonArray("diffusers", "UNet2DConditionModel"),
                ["vae"] = new JsonArray(null, null),
                ["text_encoder"] = new JsonArray("transformers", "CLIPTextModel"),
                ["tokenizer"] = new JsonArray("transformers", "CLIPTokenizer"),
                ["scheduler"] = new JsonArray("diffusers", scheduler.ClassName),
                ["safety_checker"] = new JsonArray(null, null),
                ["feature_extractor"] = new JsonArray(null, null),
                ["requires_safety_checker"] = false,
            });
            if (Directory.Exists(final)) Directory.Delete(final, true);
            Directory.Move(tmp, final);
        }
        catch
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
            throw;
        }
    }

    /// <summary>The diffusers scheduler_config.json of a config (the keys DDIM/DDPM read).</summary>
    public static JsonObject SchedulerJson(SchedulerConfig c) => new()
    {
        ["_class_name"] = c.ClassName,
        ["_diffusers_version"] = "0.40.0.dev0",
        ["num_train_timesteps"] = c.NumTrainTimesteps,
        ["beta_start"] = c.BetaStart,
        ["beta_end"] = c.BetaEnd,
        ["beta_schedule"] = c.BetaSchedule,
        ["prediction_type"] = c.PredictionType,
        ["clip_sample"] = c.ClipSample ?? true,
        ["clip_sample_range"] = c.ClipSampleRange,
        ["set_alpha_to_one"] = c.SetAlphaToOne ?? false,
        ["steps_offset"] = c.StepsOffset,
        ["timestep_spacing"] = c.TimestepSpacing ?? "leading",
        ["trained_betas"] = null,
    };

    private static void SaveWeights(string path, nn.Module module, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var tensors = module.state_dict().Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.detach().to(dtype))).ToList();
        SafeTensorsWriter.Save(path, tensors);
    }

    private static void WriteJson(string path, JsonNode node)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
