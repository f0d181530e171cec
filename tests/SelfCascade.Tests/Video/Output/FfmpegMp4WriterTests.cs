using System.Diagnostics;
using System.Text.Json;
using SelfCascade.Cli.Video;
using SelfCascade.Imaging;

namespace SelfCascade.Tests.Video.Output;

/// <summary>
/// MP4 through ffmpeg, decoded back with ffprobe/ffmpeg. ffmpeg must be installed (CI's .ci/run installs it): these
/// tests fail, not skip, without it. The failure test uses a fake ffmpeg script and needs no real one.
/// </summary>
public sealed class FfmpegMp4WriterTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-mp4-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static string Ffmpeg => FfmpegMp4Writer.Find()
        ?? throw new InvalidOperationException("ffmpeg is not on PATH: install it (apt-get install -y --no-install-recommends ffmpeg)");

    [Fact]
    public void Mp4IsH264Yuv420WithTagsAndDecodesCloseToTheFrames()
    {
        var frames = VideoTestClips.Gradient(64, 48, 8);
        var path = Path.Combine(_dir, "clip.mp4");
        FfmpegMp4Writer.Write(Ffmpeg, path, frames, fps: 8, VideoTestClips.Metadata());

        using var probe = JsonDocument.Parse(RunTool("ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", path).Text);
        var stream = probe.RootElement.GetProperty("streams")[0];
        Assert.Equal("h264", stream.GetProperty("codec_name").GetString());
        Assert.Equal("yuv420p", stream.GetProperty("pix_fmt").GetString());
        Assert.Equal(64, stream.GetProperty("width").GetInt32());
        Assert.Equal(48, stream.GetProperty("height").GetInt32());
        Assert.Equal("8", stream.GetProperty("nb_read_frames").GetString());
        Assert.Equal("8/1", stream.GetProperty("avg_frame_rate").GetString());
        var tags = probe.RootElement.GetProperty("format").GetProperty("tags");
        foreach (var (k, v) in VideoTestClips.Metadata())
            if (v.Length > 0) Assert.Equal(v, tags.GetProperty(k).GetString());
        Assert.Equal(VideoTestClips.Metadata()["parameters"], tags.GetProperty("comment").GetString());

        var raw = RunTool("ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1").Bytes;
        Assert.Equal(8 * 64 * 48 * 3, raw.Length);
        for (int f = 0; f < 8; f++)
        {
            var decoded = new RgbImage(64, 48, raw[(f * 64 * 48 * 3)..((f + 1) * 64 * 48 * 3)]);
            var (mean, _) = VideoTestClips.Difference(frames[f], decoded);
            double mse = 0;
            for (int i = 0; i < decoded.Pixels.Length; i++) { double d = decoded.Pixels[i] - frames[f].Pixels[i]; mse += d * d; }
            double psnr = 10 * Math.Log10(255.0 * 255 / (mse / decoded.Pixels.Length));
            // H.264 at CRF 15 with 4:2:0 chroma: the sharp square's colour edges cost the most.
            Assert.True(mean < 3.0 && psnr > 32, $"frame {f}: mean abs error {mean:F2}, PSNR {psnr:F1} dB");
        }
        Assert.Single(Directory.GetFiles(_dir));
    }

    [Fact]
    public void FfmpegFailingMidWriteLeavesNoFileAndOneClearError()
    {
        if (OperatingSystem.IsWindows()) return; // the stand-in ffmpeg is a shell script
        // A fake ffmpeg: reads a little of the frames, writes a partial output file, complains and exits 1.
        var bin = Directory.CreateDirectory(Path.Combine(_dir, "bin")).FullName;
        var fake = Path.Combine(bin, "ffmpeg");
        File.WriteAllText(fake, "#!/bin/sh\nhead -c 3000 > /dev/null\nfor a; do last=\"$a\"; done\necho partial > \"$last\"\necho 'fake ffmpeg: encoder exploded' >&2\nexit 1\n");
        File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var outDir = Directory.CreateDirectory(Path.Combine(_dir, "out")).FullName;
        var path = Path.Combine(outDir, "clip.mp4");
        var frames = VideoTestClips.Gradient(256, 256, 16); // 3 MB: far more than the fake reads
        var e = Assert.Throws<VideoEncodingException>(() => FfmpegMp4Writer.Write(fake, path, frames, 8, VideoTestClips.Metadata()));
        Assert.Contains("exit code 1", e.Message);
        Assert.Contains("fake ffmpeg: encoder exploded", e.Message);
        Assert.DoesNotContain("\n", e.Message);
        Assert.Empty(Directory.GetFiles(outDir));
    }

    [Fact]
    public void FfmpegExitingNonZeroAfterReadingEverythingLeavesNoFile()
    {
        if (OperatingSystem.IsWindows()) return; // the stand-in ffmpeg is a shell script
        // Reads every frame (no broken pipe), writes its output, then fails: only the exit code tells.
        var bin = Directory.CreateDirectory(Path.Combine(_dir, "bin2")).FullName;
        var fake = Path.Combine(bin, "ffmpeg");
        File.WriteAllText(fake, "#!/bin/sh\ncat > /dev/null\nfor a; do last=\"$a\"; done\necho almost > \"$last\"\necho 'fake ffmpeg: muxer failed' >&2\nexit 3\n");
        File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var outDir = Directory.CreateDirectory(Path.Combine(_dir, "out2")).FullName;
        var path = Path.Combine(outDir, "clip.mp4");
        var e = Assert.Throws<VideoEncodingException>(() => FfmpegMp4Writer.Write(fake, path, VideoTestClips.Gradient(16, 16, 2), 8));
        Assert.Contains("exit code 3", e.Message);
        Assert.Contains("fake ffmpeg: muxer failed", e.Message);
        Assert.Empty(Directory.GetFiles(outDir));
    }

    [Fact]
    public void AMissingFfmpegIsAClearError()
    {
        var path = Path.Combine(_dir, "x.mp4");
        var e = Assert.Throws<VideoEncodingException>(() =>
            FfmpegMp4Writer.Write(Path.Combine(_dir, "no-such-ffmpeg"), path, VideoTestClips.Gradient(8, 8, 1), 8));
        Assert.Contains("could not be started", e.Message);
        Assert.Empty(Directory.GetFiles(_dir));
    }

    /// <summary>Runs ffprobe/ffmpeg (next to the ffmpeg found on PATH) and returns stdout.</summary>
    private static (string Text, byte[] Bytes) RunTool(string tool, params string[] args)
    {
        var exe = Path.Combine(Path.GetDirectoryName(Ffmpeg)!, tool);
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        using var ms = new MemoryStream();
        p.StandardOutput.BaseStream.CopyTo(ms);
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{tool} failed: {err.Result}");
        var bytes = ms.ToArray();
        return (System.Text.Encoding.UTF8.GetString(bytes), bytes);
    }
}
