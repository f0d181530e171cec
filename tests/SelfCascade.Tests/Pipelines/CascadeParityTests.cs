using SelfCascade.Cascade;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Cli;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Pipelines;

/// <summary>The pivot stage against diffusers (pipelines/sd_tiny) and the cascade's CLI against diffusers' recipe.</summary>
public sealed class CascadeParityTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-casc-").FullName;
    private readonly string _model;
    public CascadeParityTests()
    {
        TorchSetup.Ensure();
        _model = TinyModelFolders.BuildSd(Path.Combine(_dir, "model"));
    }
    public void Dispose() => Directory.Delete(_dir, true);

    private const string Prompt = "a photo of a red circle";

    [Fact]
    public void StageFromBaseLatentsReproducesDiffusersImg2Img()
    {
        using var pipe = StableDiffusionPipeline.FromPretrained(_model);
        using var f = Parity.Open("pipelines", "sd_tiny", "io.safetensors");
        using var baseLatents = f.Read("base_latents_out");
        using var emb = pipe.EncodePrompt(Prompt, "", true);
        var request = new CascadeRequest { Request = new GenerationRequest(Prompt) { Steps = 10, Guidance = 7.5 } };
        var stage = new ScaleStage(1, new PixelSize(64, 64), pipe.VaeScaleFactor, 10, 0.7, 7.5, 2, 2, 4, 0.09);
        Assert.Equal(7, stage.DenoisingSteps);
        using var stageLatents = CascadeGenerator.RunStage(pipe, request, baseLatents, new PixelSize(32, 32), stage, emb, 1, null, default, 2);
        var report = new ParityReport();
        using (var pivot = Pivot.Upsample(baseLatents, 32, 32)) report.Close(pivot, f.Read("stage_pivot_upsampled"), "stage_pivot_upsampled");
        report.Close(stageLatents, f.Read("stage_latents_out"), "stage_latents_out");
        using var image = pipe.DecodeLatents(stageLatents);
        using var unit = (image / 2 + 0.5).clamp(0, 1);
        report.Close(unit, f.Read("stage_image_out"), "stage_image_out");
        report.ThrowIfAny();
    }

    [Fact]
    public void WholeCascadeFromThePromptReproducesTheFixture()
    {
        using var pipe = StableDiffusionPipeline.FromPretrained(_model);
        using var f = Parity.Open("pipelines", "sd_tiny", "io.safetensors");
        using var result = CascadeGenerator.Generate(pipe, new CascadeRequest
        {
            Request = new GenerationRequest(Prompt) { NegativePrompt = "", Steps = 10, Guidance = 7.5, Seed = 0, Width = 64, Height = 64 },
            BaseSize = new PixelSize(32, 32), PivotStrength = 0.7,
        });
        Assert.Equal(2, result.Stages.Count);
        var report = new ParityReport();
        report.Close(result.Latents, f.Read("stage_latents_out"), "stage_latents_out (seed 0 base, seed 1 stage)");
        report.ThrowIfAny();
    }

    /// <summary>
    /// The recipe: diffusers' pipeline at 32x32 with seed S (latent output) → bilinear x2 → its img2img
    /// pipeline on that latent with strength 0.6 and a generator seeded S+1, built here from the parity-checked pieces
    /// (text-to-image and the img2img stage are each checked against diffusers above), versus the CLI.
    /// </summary>
    [Fact]
    public void CliSelfCascadeEqualsTheTwoPipelineRecipe()
    {
        const long seed = 5;
        var outPath = Path.Combine(_dir, "cascade.png");
        var (code, _, err) = CliRunner.Run("generate", "--model", _model, "--prompt", Prompt, "--method", "self-cascade",
            "--base-size", "32x32", "--size", "64x64", "--pivot-strength", "0.6", "--seed", $"{seed}", "--steps", "10", "--out", outPath);
        Assert.True(code == 0, err);
        var png = RgbImage.Load(outPath);

        using var pipe = StableDiffusionPipeline.FromPretrained(_model);
        using var baseResult = pipe.Generate(new GenerationRequest(Prompt) { Seed = seed, Steps = 10, Width = 32, Height = 32 });
        using var up = Pivot.Upsample(baseResult.Latents, 32, 32);
        // img2img: set_timesteps(10); get_timesteps(10, 0.6) -> init 6, start 4; noise = randn(seed + 1); add_noise at t[0].
        var (timesteps, start) = pipe.Scheduler.GetImg2ImgTimesteps(10, 0.6);
        Assert.Equal(4, start);
        Assert.Equal(6, timesteps.Count);
        using var g = new Generator((ulong)(seed + 1));
        using var noise = randn(up.shape, generator: g);
        using var noisy = pipe.Scheduler.AddNoise(up, noise, timesteps[0]);
        using var emb = pipe.EncodePrompt(Prompt, null, true);
        using var latents = pipe.Denoise(noisy, timesteps, emb, 7.5, 1, 64, 64, g);
        using var image = pipe.DecodeLatents(latents);
        var expected = RgbImage.FromDecoderOutput(image);
        int maxDiff = png.Pixels.Zip(expected.Pixels, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(maxDiff <= 1, $"max pixel difference {maxDiff}");
    }
}
