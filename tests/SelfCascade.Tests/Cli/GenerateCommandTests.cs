using System.Text.Json;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Cli;

public sealed class GenerateCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-gen-").FullName;
    private readonly string _model;
    public GenerateCommandTests()
    {
        TorchSetup.Ensure();
        _model = TinyModelFolders.BuildSd(Path.Combine(_dir, "model"));
    }
    public void Dispose() => Directory.Delete(_dir, true);

    private string Out(string name) => Path.Combine(_dir, name);

    [Fact]
    public void PngEqualsDiffusersUint8ImageWithinOneLevel()
    {
        var (code, _, err) = CliRunner.Run("generate", "--model", _model, "--prompt", "a photo of a red circle", "--negative-prompt", "",
            "--seed", "0", "--steps", "10", "--guidance", "7.5", "--size", "32x32", "--scheduler", "ddim", "--out", Out("a.png"));
        Assert.True(code == 0, err);
        var png = RgbImage.Load(Out("a.png"));
        using var f = Parity.Open("pipelines", "sd_tiny", "io.safetensors");
        using var reference = f.Read("base_image_out");
        var expected = RgbImage.FromUnitTensor(reference[0]);
        Assert.Equal(32, png.Width);
        Assert.Equal(32, png.Height);
        int maxDiff = png.Pixels.Zip(expected.Pixels, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(maxDiff <= 1, $"max pixel difference {maxDiff} levels");
        var text = RgbImage.ReadPngText(Out("a.png"));
        Assert.Equal("a photo of a red circle", text["prompt"]);
        Assert.Equal("0", text["seed"]);
        Assert.Equal("DDIMScheduler", text["scheduler"]);
        Assert.Equal("32x32", text["size"]);
    }

    [Fact]
    public void NonSquarePngEqualsTheLibraryPipeline()
    {
        // No diffusers image exists for a non-square size; its networks are checked non-square (UNet 12x20, VAE
        // 16x24 latents), so the CLI must give exactly what the pipeline gives.
        var (code, _, err) = CliRunner.Run("generate", "--model", _model, "--prompt", "a blue square", "--seed", "3",
            "--steps", "4", "--size", "48x32", "--out", Out("wide.png"));
        Assert.True(code == 0, err);
        var png = RgbImage.Load(Out("wide.png"));
        Assert.Equal(48, png.Width);
        Assert.Equal(32, png.Height);
        using var pipe = StableDiffusionPipeline.FromPretrained(_model);
        using var result = pipe.Generate(new GenerationRequest("a blue square") { Seed = 3, Steps = 4, Width = 48, Height = 32 });
        Assert.Equal(result.Images[0].Pixels, png.Pixels);
    }

    [Fact]
    public void EmbeddedModelIsTheDefaultAndReachesSixteenTimesItsPixels()
    {
        // README's first command: no --model, the committed emoji model, 32 -> 64 -> 128 px, offline.
        var (code, output, err) = CliRunner.Run("generate", "--prompt", "red heart", "--size", "128x128", "--steps", "4", "--json", "--out", Out("readme.png"));
        Assert.True(code == 0, err);
        var png = RgbImage.Load(Out("readme.png"));
        Assert.Equal((128, 128), (png.Width, png.Height));
        Assert.Equal("emoji-base", RgbImage.ReadPngText(Out("readme.png"))["model"]);
        using var json = JsonDocument.Parse(output);
        Assert.Equal("self-cascade", json.RootElement.GetProperty("method").GetString());
        Assert.Equal(3, json.RootElement.GetProperty("stages").GetArrayLength());
        Assert.Equal(3.0, json.RootElement.GetProperty("guidance").GetDouble()); // the model's own default
        Assert.Equal("0.5", RgbImage.ReadPngText(Out("readme.png"))["pivot_strength"]);
    }

    [Fact]
    public void SameSeedSameBytesAndJsonSummary()
    {
        string[] Args(string outName) => ["generate", "--model", _model, "--prompt", "a cat", "--seed", "11", "--steps", "3", "--json", "--out", Out(outName)];
        var (c1, o1, e1) = CliRunner.Run(Args("x.png"));
        var (c2, _, e2) = CliRunner.Run(Args("y.png"));
        Assert.True(c1 == 0 && c2 == 0, e1 + e2);
        Assert.Equal(File.ReadAllBytes(Out("x.png")), File.ReadAllBytes(Out("y.png")));
        using var json = JsonDocument.Parse(o1);
        Assert.Equal(11, json.RootElement.GetProperty("seed").GetInt64());
        Assert.EndsWith("x.png", json.RootElement.GetProperty("files")[0].GetString());
        var timings = json.RootElement.GetProperty("timings");
        foreach (var phase in new[] { "load", "text_encode", "denoise", "decode", "total" })
            Assert.True(timings.GetProperty(phase).GetDouble() >= 0, phase);
    }

    [Fact]
    public void SeveralImagesGetNumberedFiles()
    {
        var (code, _, err) = CliRunner.Run("generate", "--model", _model, "--prompt", "a dog", "--steps", "2", "--num-images", "2", "--out", Out("many.png"));
        Assert.True(code == 0, err);
        var a = RgbImage.Load(Out("many-0.png"));
        var b = RgbImage.Load(Out("many-1.png"));
        Assert.NotEqual(a.Pixels, b.Pixels);
        Assert.False(File.Exists(Out("many.png")));
    }

    [Theory]
    [InlineData("--scheduler", "warp-drive", "unknown scheduler 'warp-drive'")]
    [InlineData("--size", "33x32", "multiple of 2")]
    [InlineData("--size", "wide", "not WIDTHxHEIGHT")]
    [InlineData("--prompt", "   ", "prompt is empty")]
    [InlineData("--steps", "0", "steps must be at least 1")]
    [InlineData("--device", "cuda", "CUDA was asked for")]
    public void BadInputIsOneLineErrorAndNoFile(string option, string value, string expected)
    {
        var args = new List<string> { "generate", "--model", _model, "--prompt", "a cat", "--steps", "2", "--out", Out("bad.png") };
        int i = args.IndexOf(option);
        if (i >= 0) args[i + 1] = value; else { args.Add(option); args.Add(value); }
        var (code, _, err) = CliRunner.Run(args.ToArray());
        Assert.NotEqual(0, code);
        Assert.Contains(expected, err);
        Assert.Single(err.Trim().Split('\n'));
        Assert.False(File.Exists(Out("bad.png")));
        Assert.Empty(Directory.GetFiles(_dir, "bad.png*"));
    }

    [Fact]
    public void UnreadableModelFolderIsOneLineError()
    {
        Directory.CreateDirectory(Out("empty"));
        var (code, _, err) = CliRunner.Run("generate", "--model", Out("empty"), "--prompt", "a cat", "--out", Out("x.png"));
        Assert.Equal(1, code);
        Assert.Contains("model_index.json", err);
        Assert.False(File.Exists(Out("x.png")));
    }

    [Fact]
    public void LongRunKeepsLiveTensorCountFlat()
    {
        using var pipe = StableDiffusionPipeline.FromPretrained(_model);
        using var emb = pipe.EncodePrompt("a cat", "", true);
        using var g = new Generator(1);
        pipe.Scheduler.SetTimesteps(100);
        using var noise = pipe.InitialNoise(g, 1, 32, 32);
        // One warm-up run, then the count after a 100-step run must equal the count before it.
        using (var warm = pipe.Denoise(noise, pipe.Scheduler.Timesteps.Take(2).ToList(), emb, 7.5, 1, 32, 32, g)) { }
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        pipe.Scheduler.SetTimesteps(100);
        using (var x = pipe.Denoise(noise, pipe.Scheduler.Timesteps, emb, 7.5, 1, 32, 32, g)) { }
        long after = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        pipe.Scheduler.SetTimesteps(100);
        using (var x = pipe.Denoise(noise, pipe.Scheduler.Timesteps, emb, 7.5, 1, 32, 32, g)) { }
        long after2 = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Assert.True(before == after && after == after2, $"live tensors {before} -> {after} -> {after2}");
    }
}
