using SelfCascade.Cascade.Upsamplers;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Cli;
using SelfCascade.Tests.Support;
using SelfCascade.Tests.Upsamplers;
using SelfCascade.Tests.Video.Output;
using SelfCascade.Tests.Video.Unet3D;
using SelfCascade.Video.Cascade;
using SelfCascade.Video.Output;
using SelfCascade.Video.Pipelines;
using SelfCascade.Video.Unet3D;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Video.Cli;

/// <summary>
/// `generate-video --model DIR` with a diffusers TextToVideoSDPipeline folder (modelscope_tiny, the components the
/// fixture was made with): the saved frames against diffusers' frames and the library's, every --method through the
/// video cascade, a motion adapter given with such a folder (one error, nothing written), and --upsamplers.
/// </summary>
public sealed class GenerateVideoUnet3DTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-genvid3d-").FullName;
    private readonly string _model;

    public GenerateVideoUnet3DTests()
    {
        TorchSetup.Ensure();
        _model = Unet3DFixtures.BuildFolder(Directory.CreateDirectory(Path.Combine(_dir, "t2v")).FullName);
    }

    public void Dispose() => Directory.Delete(_dir, true);

    private string Out(string name) => Path.Combine(_dir, name);

    private static RgbImage[] SavedFrames(string dir, int count) =>
        Enumerable.Range(0, count).Select(f => RgbImage.Load(Path.Combine(dir, $"frame_{f:D3}.png"))).ToArray();

    [Fact]
    public void SavedFramesAreDiffusersTextToVideoFramesAndTheLibrarys()
    {
        // modelscope_tiny/pipeline_t2v's call.
        var (code, stdout, err) = CliRunner.Run("generate-video", "--model", _model, "--prompt", "a blue square sliding to the right",
            "--negative-prompt", "", "--frames", "8", "--size", "64x64", "--steps", "5", "--guidance", "6", "--seed", "2", "--method", "direct",
            "--out", Out("sq.webp"), "--save-frames", Out("frames"));
        Assert.True(code == 0, err);
        Assert.Equal(Out("sq.webp"), stdout.Trim());
        var saved = SavedFrames(Out("frames"), 8);
        var (webp, _) = AnimatedImageDecoder.Decode(Out("sq.webp"));
        Assert.Equal(8, webp.Count);

        using var scope = NewDisposeScope();
        var reference = tensor(File.ReadAllBytes(Unet3DFixtures.ModelScope("pipeline_t2v", "frames_uint8.rgb")), [8, 64, 64, 3]).to(ScalarType.Int32);
        var ours = TextToVideoSdCascadeTests.FramesTensor(saved);
        Assert.True((ours - reference).abs().max().item<int>() <= 1, "CLI frames differ from diffusers' by more than 1");

        using var pipe = TextToVideoSdPipeline.FromPretrained(_model);
        using var lib = pipe.Generate(new TextToVideoSdRequest("a blue square sliding to the right")
            { NegativePrompt = "", Frames = 8, Width = 64, Height = 64, Steps = 5, Guidance = 6.0, Seed = 2 });
        var libFrames = VideoPipeline.ToFrames(lib.Video)[0];
        for (int f = 0; f < 8; f++)
        {
            Assert.Equal(libFrames[f].Pixels, saved[f].Pixels);
            Assert.Equal(libFrames[f].Pixels, webp[f].Pixels);
        }
        var meta = AnimatedWebP.ReadMetadata(File.ReadAllBytes(Out("sq.webp")));
        Assert.Equal("TextToVideoSD", meta["video_model"]);
        Assert.Equal("(none: UNet3D temporal layers)", meta["motion_adapter"]);
        Assert.Equal("t2v", meta["model"]);
        Assert.Equal("DDIMScheduler", meta["scheduler"]);
        Assert.Equal("6", meta["guidance"]);
    }

    [Theory]
    [InlineData("self-cascade", GenerationMethod.SelfCascade)]
    [InlineData("attn-scale", GenerationMethod.AttnScale)]
    [InlineData("upscale-only", GenerationMethod.UpscaleOnly)]
    public void EveryMethodRunsThroughTheVideoCascade(string name, GenerationMethod method)
    {
        // Above the native 32x32: 64x48, 3 frames, 4 steps, the model's default guidance (9).
        var (code, _, err) = CliRunner.Run("generate-video", "--model", _model, "--prompt", "a red ball", "--frames", "3", "--size", "64x48",
            "--steps", "4", "--seed", "3", "--method", name, "--out", Out("m.gif"), "--save-frames", Out("mf"));
        Assert.True(code == 0, err);
        var saved = SavedFrames(Out("mf"), 3);
        Assert.All(saved, f => Assert.Equal((64, 48), (f.Width, f.Height)));
        var meta = AnimatedGif.ReadMetadata(File.ReadAllBytes(Out("m.gif")));
        Assert.Equal(name, meta["method"]);

        using var pipe = VideoPipeline.FromPretrained(_model);
        using var result = VideoCascadeGenerator.Generate(pipe, new VideoRequest
        {
            Prompt = "a red ball", Frames = 3, Width = 64, Height = 48, Steps = 4, Seed = 3, Method = method,
        });
        for (int f = 0; f < 3; f++) Assert.Equal(result.Videos[0][f].Pixels, saved[f].Pixels);
        if (method == GenerationMethod.SelfCascade) Assert.Equal("32x24 -> 64x48", meta["stages"]);
    }

    [Fact]
    public void AMotionAdapterWithATextToVideoFolderIsOneErrorAndNoFile()
    {
        var adapter = Directory.CreateDirectory(Out("adapter")).FullName;
        var (code, stdout, err) = CliRunner.Run("generate-video", "--model", _model, "--motion-adapter", adapter, "--prompt", "a red ball",
            "--frames", "2", "--steps", "2", "--out", Out("a.webp"), "--save-frames", Out("af"));
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains("TextToVideoSDPipeline folder", lines[0]);
        Assert.Contains("a motion adapter does not apply", lines[0]);
        Assert.False(File.Exists(Out("a.webp")));
        Assert.False(Directory.Exists(Out("af")));
    }

    /// <summary>
    /// `--upsamplers` on a UNet3D model: the sets run per frame with the UNet3D's spatial half as their low-res branch.
    /// A zero-initialised set made for that half (saved as a checkpoint folder) gives the tuning-free frames byte for
    /// byte; the same set perturbed changes them; a set made for another UNet is one error and no file.
    /// </summary>
    [Fact]
    public void UpsamplersMadeForTheSpatialHalfRunAndOthersAreOneError()
    {
        var config = SpatialImageUNet.Config(UNet3DConditionConfig.Load(Path.Combine(_model, "unet", "config.json")));
        var zeroDir = Out("ups-zero");
        var perturbedDir = Out("ups-perturbed");
        using (var set = FeatureUpsamplerSet.Create(UpsamplerVariant.Lite, config))
        {
            set.Save(zeroDir);
            UpsamplerTestSupport.Perturb(set, 3, scale: 0.2);
            set.Save(perturbedDir);
        }
        string[] Args(string name, string? ups) => [.. new[] { "generate-video", "--model", _model, "--prompt", "a red ball", "--frames", "2",
            "--steps", "4", "--size", "64x64", "--seed", "5", "--out", Out(name + ".webp"), "--save-frames", Out(name) },
            .. ups is null ? Array.Empty<string>() : ["--upsamplers", ups]];
        foreach (var (name, ups) in new[] { ("plain", (string?)null), ("zero", zeroDir), ("perturbed", perturbedDir) })
        {
            var (c, _, e) = CliRunner.Run(Args(name, ups));
            Assert.True(c == 0, $"{name}: {e}");
        }
        var plain = SavedFrames(Out("plain"), 2);
        var zero = SavedFrames(Out("zero"), 2);
        var perturbed = SavedFrames(Out("perturbed"), 2);
        for (int f = 0; f < 2; f++)
        {
            Assert.Equal(plain[f].Pixels, zero[f].Pixels);
            Assert.NotEqual(plain[f].Pixels, perturbed[f].Pixels);
        }

        var other = Path.Combine(Fixtures.RepoRoot, "models", "emoji-base-upsamplers", "lite-64");
        var (code, stdout, err) = CliRunner.Run("generate-video", "--model", _model, "--upsamplers", other, "--prompt", "a red ball",
            "--frames", "2", "--steps", "2", "--size", "64x48", "--out", Out("u.webp"));
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains("does not fit this UNet", lines[0]);
        Assert.False(File.Exists(Out("u.webp")));
    }
}
