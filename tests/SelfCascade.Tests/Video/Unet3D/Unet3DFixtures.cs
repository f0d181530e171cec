using SelfCascade.IO;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Video.Unet3D;

/// <summary>shared/fixtures/diffusers-video/modelscope_tiny (FIXTURES.md there) and the parity components it points to.</summary>
internal static class Unet3DFixtures
{
    public static string VideoRoot => Path.Combine(Fixtures.Shared, "fixtures", "diffusers-video");
    public static string ModelScope(params string[] parts) => Path.Combine([VideoRoot, "modelscope_tiny", .. parts]);
    public static SafeTensorsFile Open(params string[] parts) => SafeTensorsFile.Open(ModelScope(parts));

    /// <summary>
    /// The modelscope_tiny UNet3D's spatial half as an image UNet config, written by hand from diffusers' 3D blocks
    /// (same blocks, linear projections, C / attention_head_dim heads): the independent check of
    /// <c>SpatialImageUNet.Config</c> (Unet3DUpsamplerTests) and the per-frame reference of the structure tests.
    /// </summary>
    public const string SpatialImageConfigJson = """
        { "_class_name": "UNet2DConditionModel", "in_channels": 4, "out_channels": 4, "block_out_channels": [32, 64],
          "layers_per_block": 1, "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"], "sample_size": 16,
          "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "cross_attention_dim": 32, "num_attention_heads": [4, 8],
          "use_linear_projection": true, "norm_num_groups": 32, "norm_eps": 1e-5 }
        """;

    /// <summary>
    /// A complete TextToVideoSDPipeline folder from modelscope_tiny's COMPONENTS.json: its unet and scheduler, the
    /// parity set's vae_tiny, text_openclip_h_style and pad_bang tokenizer (the components the fixture was made with).
    /// </summary>
    public static string BuildFolder(string dir)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(ModelScope("COMPONENTS.json")));
        foreach (var c in new[] { "unet", "scheduler", "vae", "text_encoder", "tokenizer" })
            Copy(Path.GetFullPath(Path.Combine(VideoRoot, doc.RootElement.GetProperty(c).GetString()!)), Path.Combine(dir, c));
        File.Copy(ModelScope("model_index.json"), Path.Combine(dir, "model_index.json"));
        return dir;
    }

    private static void Copy(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from))
            if (Path.GetFileName(f) != "io.safetensors") File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }
}
