using SelfCascade.Pipelines;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Pipelines;

/// <summary>pipelines/sd_tiny and pipelines/sdxl_tiny reproduced from the prompt string through every component.</summary>
public sealed class TextToImageParityTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-t2i-").FullName;
    public TextToImageParityTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    private const string Prompt = "a photo of a red circle";

    [Fact]
    public void SdTinyBaseLatentsAndImage()
    {
        using var pipe = StableDiffusionPipeline.FromPretrained(TinyModelFolders.BuildSd(Path.Combine(_dir, "sd")));
        using var f = Parity.Open("pipelines", "sd_tiny", "io.safetensors");
        var report = new ParityReport();
        using (var emb = pipe.EncodePrompt(Prompt, "", true))
        {
            report.Close(emb.Positive, f.Read("prompt_embeds"), "prompt_embeds");
            report.Close(emb.Negative!, f.Read("negative_prompt_embeds"), "negative_prompt_embeds");
        }
        using var result = pipe.Generate(new GenerationRequest(Prompt) { NegativePrompt = "", Steps = 10, Guidance = 7.5, Width = 32, Height = 32, Seed = 0 });
        report.Close(result.Latents, f.Read("base_latents_out"), "base_latents_out");
        using var image = pipe.DecodeLatents(result.Latents);
        using var unit = (image / 2 + 0.5).clamp(0, 1);
        report.Close(unit, f.Read("base_image_out"), "base_image_out");
        report.ThrowIfAny();
    }

    [Fact]
    public void SdxlTinyEmbeddingsLatentsAndImage()
    {
        using var pipe = StableDiffusionPipeline.FromPretrained(TinyModelFolders.BuildSdxl(Path.Combine(_dir, "sdxl")));
        Assert.Equal(SelfCascade.IO.ModelFamily.StableDiffusionXL, pipe.Family);
        using var f = Parity.Open("pipelines", "sdxl_tiny", "io.safetensors");
        var report = new ParityReport();
        using (var emb = pipe.EncodePrompt(Prompt, null, true))
        {
            report.Close(emb.Positive, f.Read("prompt_embeds"), "prompt_embeds");
            report.Close(emb.Negative!, f.Read("negative_prompt_embeds"), "negative_prompt_embeds");
            report.Close(emb.PooledPositive!, f.Read("pooled_prompt_embeds"), "pooled_prompt_embeds");
            report.Close(emb.PooledNegative!, f.Read("negative_pooled_prompt_embeds"), "negative_pooled_prompt_embeds");
        }
        using var result = pipe.Generate(new GenerationRequest(Prompt) { Steps = 10, Guidance = 5.0, Width = 32, Height = 32, Seed = 0 });
        report.Close(result.Latents, f.Read("latents_out"), "latents_out");
        using var image = pipe.DecodeLatents(result.Latents);
        using var unit = (image / 2 + 0.5).clamp(0, 1);
        report.Close(unit, f.Read("image_out"), "image_out");
        report.ThrowIfAny();
    }
}
