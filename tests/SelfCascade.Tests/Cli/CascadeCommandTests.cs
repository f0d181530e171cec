using System.Text.Json;
using SelfCascade.Cascade;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Cli;

/// <summary>The cascade's CLI surface: methods, plan, upscale, stages, tiling, JSON reports.</summary>
public sealed class CascadeCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-cc-").FullName;
    private readonly string _model;
    public CascadeCommandTests()
    {
        TorchSetup.Ensure();
        _model = TinyModelFolders.BuildSd(Path.Combine(_dir, "model"));
    }
    public void Dispose() => Directory.Delete(_dir, true);
    private string P(string name) => Path.Combine(_dir, name);

    [Fact]
    public void AboveNativeDefaultsToSelfCascadeAndReportsStages()
    {
        var (code, output, err) = CliRunner.Run("generate", "--model", _model, "--prompt", "a red circle", "--size", "128x64",
            "--steps", "4", "--json", "--save-stages", P("stages"), "--out", P("c.png"));
        Assert.True(code == 0, err);
        using var json = JsonDocument.Parse(output);
        Assert.Equal("self-cascade", json.RootElement.GetProperty("method").GetString());
        var stages = json.RootElement.GetProperty("stages").EnumerateArray().ToList();
        Assert.True(stages.Count >= 2);
        Assert.Equal(128, stages[^1].GetProperty("width").GetInt32());
        Assert.Equal(64, stages[^1].GetProperty("height").GetInt32());
        Assert.Equal(2, stages[1].GetProperty("steps").GetInt32()); // int(4 * 0.7) = 2
        foreach (var s in stages) Assert.True(s.GetProperty("seconds").GetDouble() >= 0);
        var png = RgbImage.Load(P("c.png"));
        Assert.Equal((128, 64), (png.Width, png.Height));
        var saved = Directory.GetFiles(P("stages"), "*.png").Select(Path.GetFileName).Order().ToList();
        Assert.Equal(stages.Count - 1, saved.Count);
        Assert.StartsWith("stage0_", saved[0]);
        Assert.Contains("->", RgbImage.ReadPngText(P("c.png"))["stages"]);
    }

    [Theory]
    [InlineData("direct")]
    [InlineData("attn-scale")]
    [InlineData("upscale-only")]
    public void BaselinesProduceTheTargetSize(string method)
    {
        var (code, output, err) = CliRunner.Run("generate", "--model", _model, "--prompt", "a red circle", "--size", "64x64",
            "--steps", "3", "--method", method, "--json", "--out", P(method + ".png"));
        Assert.True(code == 0, err);
        Assert.Equal(method, JsonDocument.Parse(output).RootElement.GetProperty("method").GetString());
        var png = RgbImage.Load(P(method + ".png"));
        Assert.Equal((64, 64), (png.Width, png.Height));
    }

    [Fact]
    public void AttnScaleChangesTheImageAndDirectDoesNotScale()
    {
        string[] Args(string method, string name) => ["generate", "--model", _model, "--prompt", "a red circle", "--size", "64x64", "--steps", "3", "--method", method, "--out", P(name)];
        Assert.Equal(0, CliRunner.Run(Args("direct", "d.png")).Code);
        Assert.Equal(0, CliRunner.Run(Args("attn-scale", "a.png")).Code);
        Assert.NotEqual(RgbImage.Load(P("d.png")).Pixels, RgbImage.Load(P("a.png")).Pixels);
        // A 64x64 image from a 32x32-native model: 4x the pixels (the per-level factors: Unet/AttnScaleBaselineTests).
        Assert.Equal(4.0, CascadeGenerator.AttentionPixelRatio(32, 64, 64));
    }

    /// <summary>
    /// `--vae-tiling on` really tiles: the tiny model's VAE has sample_size 32 px (scale factor 2), so diffusers'
    /// default tile is 16 latents and a 64x64 image (32x32 latents) is decoded in 3x3 tiles (stride 12). The CLI's
    /// images are exactly the pipeline's decodes of the same latents, tiled (the diffusers-exact decode that
    /// TiledVaeParityTests matches against diffusers' enable_tiling()) and untiled, and the two differ.
    /// </summary>
    [Fact]
    public void VaeTilingOnDecodesInDiffusersTiles()
    {
        string[] Args(string tiling, string name) => ["generate", "--model", _model, "--prompt", "a red circle", "--size", "64x64", "--steps", "2",
            "--method", "direct", "--vae-tiling", tiling, "--out", P(name)];
        Assert.Equal(0, CliRunner.Run(Args("off", "off.png")).Code);
        Assert.Equal(0, CliRunner.Run(Args("on", "on.png")).Code);
        var off = RgbImage.Load(P("off.png")).Pixels;
        var on = RgbImage.Load(P("on.png")).Pixels;

        using var pipe = StableDiffusionPipeline.FromPretrained(_model);
        using var result = CascadeGenerator.Generate(pipe, new CascadeRequest
        {
            Request = new GenerationRequest("a red circle") { Width = 64, Height = 64, Steps = 2, Seed = 0 },
            Method = GenerationMethod.Direct, VaeTiling = VaeTiling.Off,
        });
        var tileOptions = pipe.TileOptionsFor(null);
        Assert.Equal(32, tileOptions.TileSampleSize);
        Assert.True(TiledVae.ShouldTile(VaeTiling.On, 32, 32, tileOptions));
        Assert.Equal(off, result.Images[0].Pixels);
        Assert.Equal(off, RgbImage.FromDecoderOutput(pipe.DecodeLatents(result.Latents, VaeTiling.Off)).Pixels);
        Assert.Equal(on, RgbImage.FromDecoderOutput(pipe.DecodeLatents(result.Latents, VaeTiling.On)).Pixels);
        // Tiled is not untiled (the tiny VAE's mid-block attention and GroupNorm see only their tile).
        Assert.True(on.Zip(off, (x, y) => Math.Abs(x - y)).Max() > 0, "tiling changed nothing: it did not tile");
    }

    [Fact]
    public void PlanPrintsStagesFromConfigsAndRefusesSmallTargets()
    {
        var (code, output, err) = CliRunner.Run("plan", "--model", _model, "--size", "128x128", "--json");
        Assert.True(code == 0, err);
        using var json = JsonDocument.Parse(output);
        var sizes = json.RootElement.GetProperty("stages").EnumerateArray().Select(s => s.GetProperty("width").GetInt32()).ToList();
        Assert.Equal([32, 64, 128], sizes);
        Assert.Equal(50 + 35 + 35, json.RootElement.GetProperty("total_unet_steps").GetInt32());
        var text = CliRunner.Run("plan", "--model", _model, "--size", "128x128");
        Assert.Contains("stage", text.Out);
        var small = CliRunner.Run("plan", "--model", _model, "--size", "16x16");
        Assert.Equal(1, small.Code);
        Assert.Contains("smaller than the model's native", small.Err);
        var huge = CliRunner.Run("plan", "--model", _model, "--size", "100000x100000");
        Assert.Equal(1, huge.Code);
    }

    [Fact]
    public void UpscaleDoublesAnImage()
    {
        var input = new RgbImage(32, 24);
        for (int i = 0; i < input.Pixels.Length; i++) input.Pixels[i] = (byte)(i % 251);
        input.SavePng(P("in.png"));
        var (code, output, err) = CliRunner.Run("upscale", "--model", _model, "--image", P("in.png"), "--scale", "4", "--steps", "4",
            "--prompt", "noise", "--json", "--out", P("up.png"));
        Assert.True(code == 0, err);
        var png = RgbImage.Load(P("up.png"));
        Assert.Equal((128, 96), (png.Width, png.Height));
        using var json = JsonDocument.Parse(output);
        Assert.Equal(3, json.RootElement.GetProperty("stages").GetArrayLength());
        var bad = CliRunner.Run("upscale", "--model", _model, "--image", P("in.png"), "--scale", "3", "--out", P("x.png"));
        Assert.NotEqual(0, bad.Code);
        Assert.False(File.Exists(P("x.png")));
    }

    [Fact]
    public void UpsamplersFlagLoadsCheckpoints()
    {
        using (var pipe = StableDiffusionPipeline.FromPretrained(_model))
        {
            using var zero = SelfCascade.Cascade.Upsamplers.FeatureUpsamplerSet.Create(SelfCascade.Cascade.Upsamplers.UpsamplerVariant.Lite, pipe.Unet);
            zero.Save(P("ups-zero"));
            using var trained = SelfCascade.Cascade.Upsamplers.FeatureUpsamplerSet.Create(SelfCascade.Cascade.Upsamplers.UpsamplerVariant.Lite, pipe.Unet);
            SelfCascade.Tests.Upsamplers.UpsamplerTestSupport.Perturb(trained, 3);
            trained.Save(P("ups-trained"));
        }
        string[] Args(string name, params string[] extra) => ["generate", "--model", _model, "--prompt", "a red circle", "--size", "64x64", "--steps", "4", "--out", P(name), .. extra];
        Assert.Equal(0, CliRunner.Run(Args("plain.png")).Code);
        var zeroRun = CliRunner.Run(Args("zero.png", "--upsamplers", P("ups-zero")));
        Assert.True(zeroRun.Code == 0, zeroRun.Err);
        var trainedRun = CliRunner.Run(Args("trained.png", "--upsamplers", P("ups-trained")));
        Assert.True(trainedRun.Code == 0, trainedRun.Err);
        Assert.Equal(RgbImage.Load(P("plain.png")).Pixels, RgbImage.Load(P("zero.png")).Pixels);
        Assert.NotEqual(RgbImage.Load(P("plain.png")).Pixels, RgbImage.Load(P("trained.png")).Pixels);
        var missing = CliRunner.Run(Args("none.png", "--upsamplers", P("nowhere")));
        Assert.Equal(1, missing.Code);
        Assert.False(File.Exists(P("none.png")));
    }

    [Fact]
    public void UpsamplersFlagTakesTheFolderTrainUpsamplersWrote()
    {
        // train-upsamplers --out RUN writes RUN/upsamplers (UpsamplerTrainingTask.Finish) beside checkpoints/ and loss.csv.
        var run = Directory.CreateDirectory(P("run")).FullName;
        Directory.CreateDirectory(Path.Combine(run, "checkpoints", "step-000002"));
        File.WriteAllText(Path.Combine(run, "loss.csv"), "step,loss\n");
        using (var pipe = StableDiffusionPipeline.FromPretrained(_model))
        {
            using var trained = SelfCascade.Cascade.Upsamplers.FeatureUpsamplerSet.Create(SelfCascade.Cascade.Upsamplers.UpsamplerVariant.Lite, pipe.Unet);
            SelfCascade.Tests.Upsamplers.UpsamplerTestSupport.Perturb(trained, 3);
            trained.Save(Path.Combine(run, SelfCascade.Training.UpsamplerTrainingTask.UpsamplerFolder));
        }
        Assert.Equal(Path.Combine(run, "upsamplers"), SelfCascade.Cascade.Upsamplers.FeatureUpsamplerSet.ResolveCheckpointDir(run));
        Assert.Equal(Path.Combine(run, "upsamplers"), SelfCascade.Cascade.Upsamplers.FeatureUpsamplerSet.ResolveCheckpointDir(Path.Combine(run, "upsamplers")));
        string[] Args(string name, params string[] extra) => ["generate", "--model", _model, "--prompt", "a red circle", "--size", "64x64", "--steps", "4", "--out", P(name), .. extra];
        var plain = CliRunner.Run(Args("plain.png"));
        Assert.True(plain.Code == 0, plain.Err);
        var inner = CliRunner.Run(Args("inner.png", "--upsamplers", Path.Combine(run, "upsamplers")));
        Assert.True(inner.Code == 0, inner.Err);
        var outer = CliRunner.Run(Args("outer.png", "--upsamplers", run));
        Assert.True(outer.Code == 0, outer.Err);
        Assert.Equal(RgbImage.Load(P("inner.png")).Pixels, RgbImage.Load(P("outer.png")).Pixels);
        Assert.NotEqual(RgbImage.Load(P("plain.png")).Pixels, RgbImage.Load(P("outer.png")).Pixels);

        // A folder that is neither: the error says where it looked.
        var empty = Directory.CreateDirectory(P("empty")).FullName;
        var none = CliRunner.Run(Args("none.png", "--upsamplers", empty));
        Assert.Equal(1, none.Code);
        Assert.Contains("config.json is missing (here and in its upsamplers/ subfolder)", none.Err);
        Assert.False(File.Exists(P("none.png")));
    }

    [Fact]
    public void StageOverridesAreValidated()
    {
        var (code, _, err) = CliRunner.Run("generate", "--model", _model, "--prompt", "x", "--size", "64x64", "--steps", "4",
            "--stage-steps", "4,two", "--out", P("s.png"));
        Assert.Equal(1, code);
        Assert.Contains("--stage-steps", err);
        var strength = CliRunner.Run("generate", "--model", _model, "--prompt", "x", "--size", "64x64", "--pivot-strength", "1.5", "--out", P("s.png"));
        Assert.Equal(1, strength.Code);
        Assert.Contains("pivot-strength", strength.Err);
        Assert.False(File.Exists(P("s.png")));
    }
}

/// <summary>The cascade with every scheduler, and with SDXL (whose time_ids follow each stage's size).</summary>
public sealed class CascadeSchedulerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-cs-").FullName;
    public CascadeSchedulerTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    [Theory]
    [InlineData("ddim")]
    [InlineData("pndm")]
    [InlineData("euler")]
    [InlineData("euler-a")]
    [InlineData("dpm++2m")]
    [InlineData("dpm++2m-karras")]
    [InlineData("lms")]
    [InlineData("unipc")]
    [InlineData("ddpm")]
    public void EverySchedulerRunsTheCascade(string scheduler)
    {
        var model = TinyModelFolders.BuildSd(Path.Combine(_dir, "m"));
        var (code, output, err) = CliRunner.Run("generate", "--model", model, "--prompt", "a red circle", "--size", "64x64",
            "--steps", "5", "--scheduler", scheduler, "--json", "--out", Path.Combine(_dir, "o.png"));
        Assert.True(code == 0, err);
        using var json = JsonDocument.Parse(output);
        Assert.Equal(2, json.RootElement.GetProperty("stages").GetArrayLength());
        var px = RgbImage.Load(Path.Combine(_dir, "o.png")).Pixels;
        Assert.True(px.Max() - px.Min() > 10, "flat image");
    }

    [Fact]
    public void SdxlCascadeConditionsEachStageOnItsSize()
    {
        var model = TinyModelFolders.BuildSdxl(Path.Combine(_dir, "xl"));
        using var pipe = StableDiffusionPipeline.FromPretrained(model);
        using var ids = pipe.TimeIds(64, 48, 2);
        Assert.Equal(new float[] { 48, 64, 0, 0, 48, 64 }, ids[0].data<float>().ToArray());
        using var result = CascadeGenerator.Generate(pipe, new CascadeRequest
        {
            Request = new GenerationRequest("a red circle") { Steps = 4, Width = 64, Height = 64 },
            BaseSize = new SelfCascade.Cascade.PixelSize(32, 32),
        });
        Assert.Equal((64, 64), (result.Images[0].Width, result.Images[0].Height));
    }
}
