using System.Text.Json;
using SelfCascade.IO;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Video;

/// <summary>
/// The read-only diffusers video fixtures (shared/fixtures/diffusers-video, FIXTURES.md there) and the AnimateDiff
/// folder they describe, assembled from the components COMPONENTS.json names (2D UNet, VAE, text encoder and
/// tokenizer of diffusers-parity, motion adapter and scheduler of animatediff_tiny).
/// </summary>
public static class VideoFixtures
{
    public static string Root => Path.Combine(Fixtures.Shared, "fixtures", "diffusers-video");
    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);
    public static SafeTensorsFile Open(params string[] parts) => SafeTensorsFile.Open(PathOf(parts));
    public static string AdapterDir => PathOf("animatediff_tiny", "motion_adapter");

    /// <summary>An AnimateDiffPipeline folder (model_index.json with a motion_adapter component).</summary>
    public static string BuildAnimateDiff(string dir)
    {
        Directory.CreateDirectory(dir);
        Copy(Fixtures.ParityPath("models", "unet_sd15_style"), Path.Combine(dir, "unet"));
        Copy(Fixtures.ParityPath("models", "vae_tiny"), Path.Combine(dir, "vae"));
        Copy(Fixtures.ParityPath("models", "text_clip_l_style"), Path.Combine(dir, "text_encoder"));
        Copy(Fixtures.ParityPath("tokenizer", "pad_eos"), Path.Combine(dir, "tokenizer"));
        Copy(AdapterDir, Path.Combine(dir, "motion_adapter"));
        Copy(PathOf("animatediff_tiny", "scheduler"), Path.Combine(dir, "scheduler"));
        File.Copy(PathOf("animatediff_tiny", "model_index.json"), Path.Combine(dir, "model_index.json"), overwrite: true);
        return dir;
    }

    /// <summary>The image-only SD 1.x-style folder with the AnimateDiff scheduler (for the image-UNet comparisons).</summary>
    public static string UnetDir => Fixtures.ParityPath("models", "unet_sd15_style");

    public static void Copy(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from))
        {
            if (Path.GetFileName(f) == "io.safetensors") continue;
            File.Copy(f, Path.Combine(to, Path.GetFileName(f)), overwrite: true);
        }
    }

    public static JsonElement Readme(string pipeline) =>
        JsonDocument.Parse(File.ReadAllText(PathOf("animatediff_tiny", pipeline, "README.json"))).RootElement;
}
