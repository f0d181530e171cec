using SelfCascade.IO;
using SelfCascade.Models;
using SelfCascade.Models.Unet;
using SelfCascade.Models.Vae;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Bench;

/// <summary>Random-weight networks of known shapes (speed does not depend on the weights' values).</summary>
public static class BenchModels
{
    /// <summary>SD 2.1-base's layout at a fifth of the width (4 blocks, linear projections, per-block heads), native 256 px for CPU runs.</summary>
    public const string MediumSd21Unet = """
    { "_class_name": "UNet2DConditionModel", "sample_size": 32, "in_channels": 4, "out_channels": 4,
      "down_block_types": ["CrossAttnDownBlock2D","CrossAttnDownBlock2D","CrossAttnDownBlock2D","DownBlock2D"],
      "up_block_types": ["UpBlock2D","CrossAttnUpBlock2D","CrossAttnUpBlock2D","CrossAttnUpBlock2D"],
      "block_out_channels": [64, 128, 256, 256], "layers_per_block": 2, "attention_head_dim": [1, 2, 4, 4],
      "cross_attention_dim": 256, "use_linear_projection": true, "norm_num_groups": 32 }
    """;

    public const string MediumVae = """
    { "_class_name": "AutoencoderKL", "in_channels": 3, "out_channels": 3, "latent_channels": 4,
      "down_block_types": ["DownEncoderBlock2D","DownEncoderBlock2D","DownEncoderBlock2D","DownEncoderBlock2D"],
      "up_block_types": ["UpDecoderBlock2D","UpDecoderBlock2D","UpDecoderBlock2D","UpDecoderBlock2D"],
      "block_out_channels": [32, 64, 128, 128], "layers_per_block": 2, "norm_num_groups": 32, "sample_size": 512,
      "scaling_factor": 0.18215 }
    """;

    /// <summary>A config from the shared arch fixtures (the real full-size configs), when present.</summary>
    public static string? ArchConfig(string file)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var p = Path.Combine(dir.FullName, "shared", "fixtures", "diffusers-parity", "arch", file);
            var q = Path.Combine(dir.FullName, "..", "shared", "fixtures", "diffusers-parity", "arch", file);
            foreach (var c in new[] { p, q })
                if (File.Exists(c))
                {
                    using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(c));
                    return doc.RootElement.GetProperty("config").GetRawText();
                }
        }
        return null;
    }

    /// <summary>The CLIP tokenizer folder of the shared fixtures.</summary>
    public static string TokenizerDir()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            foreach (var c in new[] { Path.Combine(dir.FullName, "shared"), Path.Combine(dir.FullName, "..", "shared") })
            {
                var p = Path.Combine(c, "fixtures", "diffusers-parity", "tokenizer", "pad_bang");
                if (Directory.Exists(p)) return p;
            }
        throw new DirectoryNotFoundException("shared/fixtures/diffusers-parity/tokenizer/pad_bang not found above " + AppContext.BaseDirectory);
    }

    public static UNet2DConditionModel Unet(string json, Device device, ScalarType dtype)
    {
        var config = UNet2DConditionConfig.FromJson(ConfigJson.Parse(json, "bench unet"));
        using var _ = ModelConstruction.On(device, dtype);
        var m = new UNet2DConditionModel(config);
        m.eval();
        return m;
    }

    public static AutoencoderKL Vae(string json, Device device, ScalarType dtype)
    {
        var config = AutoencoderKLConfig.FromJson(ConfigJson.Parse(json, "bench vae"));
        using var _ = ModelConstruction.On(device, dtype);
        var m = new AutoencoderKL(config);
        m.eval();
        return m;
    }
}
