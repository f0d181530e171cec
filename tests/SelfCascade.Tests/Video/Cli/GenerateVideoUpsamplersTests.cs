using SelfCascade.Cascade.Upsamplers;
using SelfCascade.Cli;
using SelfCascade.Cli.Commands;
using SelfCascade.Tests.Cli;
using SelfCascade.Tests.Support;
using SelfCascade.Tests.Video.Output;
using SelfCascade.Video.Cascade;
using SelfCascade.Video.Output;
using SelfCascade.Video.Pipelines;

namespace SelfCascade.Tests.Video.Cli;

/// <summary>
/// `generate-video --upsamplers`: the embedded emoji model and motion adapter with the embedded image-trained
/// upsampler set (models/emoji-base-upsamplers/lite-64, trained on still images): the same checkpoint runs per frame.
/// </summary>
public sealed class GenerateVideoUpsamplersTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-genvid-ups-").FullName;

    public GenerateVideoUpsamplersTests() => TorchSetup.Ensure();

    public void Dispose() => Directory.Delete(_dir, true);

    private static string EmbeddedModel => ModelOption.EmbeddedModelDir() ?? throw new InvalidOperationException("models/emoji-base not found");
    private static string Lite64 => Path.Combine(Path.GetDirectoryName(EmbeddedModel)!, "emoji-base-upsamplers", "lite-64");

    private string Out(string name) => Path.Combine(_dir, name);

    [Fact]
    public void ImageTrainedUpsamplersRunPerFrameAndMatchTheLibrary()
    {
        var (code, stdout, err) = CliRunner.Run("generate-video", "--prompt", "red heart, zooming in", "--size", "64x64", "--frames", "2",
            "--steps", "4", "--seed", "2", "--upsamplers", Lite64, "--out", Out("tuned.webp"));
        Assert.True(code == 0, err);
        Assert.Equal(Out("tuned.webp"), stdout.Trim());
        var (frames, _) = AnimatedImageDecoder.Decode(Out("tuned.webp"));
        var meta = AnimatedWebP.ReadMetadata(File.ReadAllBytes(Out("tuned.webp")));
        Assert.Equal("lite-64", meta["upsamplers"]);
        Assert.Equal("32x32 -> 64x64", meta["stages"]);

        using var pipe = VideoPipeline.FromAnimateDiff(EmbeddedModel, GenerateVideoCommand.EmbeddedMotionDir());
        using var injector = FeatureUpsamplerInjector.FromCheckpoints([Lite64], pipe.Image.Unet);
        VideoRequest Request(FeatureUpsamplerInjector? ups) => new()
        {
            Prompt = "red heart, zooming in", Frames = 2, Width = 64, Height = 64, Steps = 4, Seed = 2, Upsamplers = ups,
        };
        using var tuned = VideoCascadeGenerator.Generate(pipe, Request(injector));
        using var plain = VideoCascadeGenerator.Generate(pipe, Request(null));
        Assert.Equal(2, frames.Count);
        for (int f = 0; f < 2; f++) Assert.Equal(tuned.Videos[0][f].Pixels, frames[f].Pixels);
        Assert.True(Parity.MaxAbsDiff(tuned.Latents, plain.Latents) > 1e-4, "the trained set must change the video");
    }

    [Fact]
    public void AMissingUpsamplerFolderIsOneErrorAndWritesNothing()
    {
        var (code, _, err) = CliRunner.Run("generate-video", "--prompt", "red heart", "--size", "64x64", "--frames", "2", "--steps", "2",
            "--upsamplers", Out("nope"), "--out", Out("x.webp"));
        Assert.Equal(1, code);
        Assert.StartsWith("error: ", err);
        Assert.Contains("--upsamplers", err);
        Assert.Contains("folder not found", err);
        Assert.False(File.Exists(Out("x.webp")));
    }
}
