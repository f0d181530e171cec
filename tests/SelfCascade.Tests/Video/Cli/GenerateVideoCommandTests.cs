using System.Diagnostics;
using SelfCascade.Cli;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Cli;
using SelfCascade.Tests.Support;
using SelfCascade.Tests.Video.Output;
using SelfCascade.Video.Cascade;
using SelfCascade.Video.Models;
using SelfCascade.Video.Output;
using SelfCascade.Video.Pipelines;
using SelfCascade.Video.Training;
using TorchSharp;

namespace SelfCascade.Tests.Video.Cli;

/// <summary>
/// `generate-video` on the embedded emoji model with a small random motion adapter made here (the adapter's output
/// projections are random, so the frames depend on each other): the written files against the library's frames,
/// their metadata, and bad input (one error line, nothing written).
/// </summary>
public sealed class GenerateVideoCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-genvid-").FullName;
    private readonly string _adapter;

    public GenerateVideoCommandTests()
    {
        TorchSetup.Ensure();
        _adapter = Path.Combine(_dir, "adapter");
        torch.manual_seed(5);
        var config = new MotionAdapterConfig
        {
            BlockOutChannels = [32, 64, 128], MotionLayersPerBlock = 1, MotionNumAttentionHeads = 4, MotionNormNumGroups = 8,
            MotionMaxSeqLength = 16, UseMotionMidBlock = false,
        };
        using var adapter = new MotionAdapter(config, normGroups: 8);
        MotionAdapterTask.Save(adapter, _adapter, trainingSteps: 0);
    }

    public void Dispose() => Directory.Delete(_dir, true);

    private string Out(string name) => Path.Combine(_dir, name);

    private static string EmbeddedModel => ModelOption.EmbeddedModelDir() ?? throw new InvalidOperationException("models/emoji-base not found");

    [Fact]
    public void WebPAndSavedFramesAreTheLibrarysFramesWithTheParameters()
    {
        var (code, stdout, err) = CliRunner.Run("generate-video", "--motion-adapter", _adapter, "--prompt", "red heart, zooming in",
            "--frames", "4", "--fps", "6", "--steps", "3", "--seed", "7", "--out", Out("heart.webp"), "--save-frames", Out("frames"));
        Assert.True(code == 0, err);
        Assert.Equal(Out("heart.webp"), stdout.Trim());
        var (frames, durations) = AnimatedImageDecoder.Decode(Out("heart.webp"));
        Assert.Equal(4, frames.Count);
        Assert.All(durations, d => Assert.InRange(d, 166, 167));

        using var pipe = VideoPipeline.FromAnimateDiff(EmbeddedModel, _adapter);
        using var result = VideoCascadeGenerator.Generate(pipe, new VideoRequest
        {
            Prompt = "red heart, zooming in", Frames = 4, Steps = 3, Seed = 7, Method = GenerationMethod.Direct,
        });
        for (int f = 0; f < 4; f++)
        {
            Assert.Equal(result.Videos[0][f].Pixels, frames[f].Pixels);
            var png = Path.Combine(Out("frames"), $"frame_{f:D3}.png");
            Assert.Equal(frames[f].Pixels, RgbImage.Load(png).Pixels);
            Assert.Equal(f.ToString(), RgbImage.ReadPngText(png)["frame_index"]);
        }
        // The motion modules act: the frames differ from each other.
        Assert.NotEqual(frames[0].Pixels, frames[3].Pixels);
        var meta = AnimatedWebP.ReadMetadata(File.ReadAllBytes(Out("heart.webp")));
        Assert.Equal("red heart, zooming in", meta["prompt"]);
        Assert.Equal("7", meta["seed"]);
        Assert.Equal("4", meta["frames"]);
        Assert.Equal("6", meta["fps"]);
        Assert.Equal("adapter", meta["motion_adapter"]);
        Assert.Equal("emoji-base", meta["model"]);
        Assert.Equal("direct", meta["method"]);
    }

    [Fact]
    public void WithoutModelOptionsTheEmbeddedModelAndMotionAdapterRun()
    {
        // The README's command (at 64 px and 2 steps to stay quick): models/emoji-base + models/emoji-motion, offline.
        var (code, stdout, err) = CliRunner.Run("generate-video", "--prompt", "red heart, zooming in", "--size", "64x64", "--frames", "8",
            "--steps", "2", "--out", Out("readme.webp"));
        Assert.True(code == 0, err);
        Assert.Equal(Out("readme.webp"), stdout.Trim());
        var (frames, _) = AnimatedImageDecoder.Decode(Out("readme.webp"));
        Assert.Equal(8, frames.Count);
        Assert.All(frames, f => Assert.Equal((64, 64), (f.Width, f.Height)));
        var meta = AnimatedWebP.ReadMetadata(File.ReadAllBytes(Out("readme.webp")));
        Assert.Equal("emoji-motion", meta["motion_adapter"]);
        Assert.Equal("emoji-base", meta["model"]);
    }

    [Fact]
    public void GifAboveTheNativeSizeRunsTheCascade()
    {
        var (code, _, err) = CliRunner.Run("generate-video", "--motion-adapter", _adapter, "--prompt", "blue circle, bouncing",
            "--size", "64x64", "--frames", "3", "--steps", "3", "--out", Out("c.gif"));
        Assert.True(code == 0, err);
        var (frames, _) = AnimatedImageDecoder.Decode(Out("c.gif"));
        Assert.Equal(3, frames.Count);
        Assert.All(frames, f => Assert.Equal((64, 64), (f.Width, f.Height)));
        var meta = AnimatedGif.ReadMetadata(File.ReadAllBytes(Out("c.gif")));
        Assert.Equal("self-cascade", meta["method"]);
        Assert.Equal("32x32 -> 64x64", meta["stages"]);
        Assert.Equal("64x64", meta["size"]);
    }

    [Fact]
    public void Mp4ThroughFfmpegHasEveryFrame()
    {
        Assert.True(FfmpegMp4WriterTestsSupport.FfmpegOnPath, "ffmpeg is not on PATH: install it (apt-get install -y --no-install-recommends ffmpeg)");
        var (code, stdout, err) = CliRunner.Run("generate-video", "--motion-adapter", _adapter, "--prompt", "red heart",
            "--frames", "5", "--steps", "2", "--out", Out("h.mp4"));
        Assert.True(code == 0, err);
        Assert.Equal(Out("h.mp4"), stdout.Trim());
        var probe = FfmpegMp4WriterTestsSupport.Probe(Out("h.mp4"));
        Assert.Contains("\"nb_read_frames\": \"5\"", probe);
        Assert.Contains("\"prompt\": \"red heart\"", probe);
        Assert.Contains("\"motion_adapter\": \"adapter\"", probe);
    }

    [Fact]
    public void WithoutFfmpegAnMp4RequestWritesWebPAndSaysSo()
    {
        var empty = Directory.CreateDirectory(Out("nobin")).FullName;
        var (code, stdout, err) = WithPath(empty, () => CliRunner.Run("generate-video", "--motion-adapter", _adapter, "--prompt", "red heart",
            "--frames", "2", "--steps", "2", "--out", Out("h.mp4")));
        Assert.True(code == 0, err);
        Assert.Equal(Out("h.webp"), stdout.Trim());
        Assert.Contains("ffmpeg is not on PATH", err);
        Assert.False(File.Exists(Out("h.mp4")));
        Assert.Equal(2, AnimatedImageDecoder.Decode(Out("h.webp")).Frames.Count);
    }

    [Fact]
    public void FfmpegFailingMidWriteIsOneErrorAndNoPartialFile()
    {
        if (OperatingSystem.IsWindows()) return; // the stand-in ffmpeg is a shell script
        var bin = Directory.CreateDirectory(Out("fakebin")).FullName;
        var fake = Path.Combine(bin, "ffmpeg");
        File.WriteAllText(fake, "#!/bin/sh\nhead -c 100 > /dev/null\nfor a; do last=\"$a\"; done\necho partial > \"$last\"\necho 'fake ffmpeg: disk on fire' >&2\nexit 1\n");
        File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var outDir = Directory.CreateDirectory(Out("o")).FullName;
        var (code, stdout, err) = WithPath(bin + Path.PathSeparator + Environment.GetEnvironmentVariable("PATH"), () =>
            CliRunner.Run("generate-video", "--motion-adapter", _adapter, "--prompt", "red heart", "--frames", "4", "--steps", "2",
                "--out", Path.Combine(outDir, "h.mp4")));
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ffmpeg failed", lines[0]);
        Assert.Contains("fake ffmpeg: disk on fire", lines[0]);
        Assert.Empty(Directory.GetFileSystemEntries(outDir));
    }

    [Theory]
    [InlineData("0", "--frames must be at least 1")]
    [InlineData("17", "at most 16")]
    public void FrameCountsOutsideTheAdapterAreOneErrorAndNoFile(string frames, string message)
    {
        var (code, _, err) = CliRunner.Run("generate-video", "--motion-adapter", _adapter, "--prompt", "red heart", "--frames", frames,
            "--steps", "2", "--out", Out("x.webp"), "--save-frames", Out("xf"));
        Assert.Equal(1, code);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(message, err);
        Assert.False(File.Exists(Out("x.webp")));
        Assert.False(Directory.Exists(Out("xf")));
    }

    [Fact]
    public void AnUnknownAdapterLayoutIsOneErrorAndNoFile()
    {
        // Original AnimateDiff checkpoint names under a diffusers config: not a layout we load.
        var bad = Directory.CreateDirectory(Out("bad-adapter")).FullName;
        File.Copy(Path.Combine(_adapter, "config.json"), Path.Combine(bad, "config.json"));
        using (var t = torch.zeros(4))
            SelfCascade.IO.SafeTensorsWriter.Save(Path.Combine(bad, "diffusion_pytorch_model.safetensors"),
                [new("down_blocks.0.motion_modules.0.temporal_transformer.proj_in.bias", t)]);
        var (code, _, err) = CliRunner.Run("generate-video", "--motion-adapter", bad, "--prompt", "red heart", "--frames", "2",
            "--steps", "2", "--out", Out("y.webp"));
        Assert.Equal(1, code);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("not a diffusers MotionAdapter", err);
        Assert.False(File.Exists(Out("y.webp")));
    }

    [Fact]
    public void AnUnknownOutputFormatIsRejectedBeforeAnyWork()
    {
        var (code, _, err) = CliRunner.Run("generate-video", "--motion-adapter", _adapter, "--prompt", "red heart", "--out", Out("z.avi"));
        Assert.Equal(1, code);
        Assert.Contains("must end in .mp4, .webp, .gif", err);
    }

    /// <summary>Runs with PATH replaced (tests run one at a time; PATH is restored afterwards).</summary>
    private static T WithPath<T>(string path, Func<T> run)
    {
        var old = Environment.GetEnvironmentVariable("PATH");
        Environment.SetEnvironmentVariable("PATH", path);
        try { return run(); }
        finally { Environment.SetEnvironmentVariable("PATH", old); }
    }
}

/// <summary>ffprobe for the CLI tests.</summary>
internal static class FfmpegMp4WriterTestsSupport
{
    public static bool FfmpegOnPath => SelfCascade.Cli.Video.FfmpegMp4Writer.Find() != null;

    public static string Probe(string path)
    {
        var exe = Path.Combine(Path.GetDirectoryName(SelfCascade.Cli.Video.FfmpegMp4Writer.Find()!)!, "ffprobe");
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", path }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var text = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        return text;
    }
}
