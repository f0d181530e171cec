using SelfCascade.Imaging;
using SelfCascade.Video.Output;

namespace SelfCascade.Tests.Video.Output;

/// <summary>The native writers (animated WebP, GIF), decoded back with Skia's own decoders.</summary>
public sealed class NativeVideoWriterTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-vid-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void WebPIsLosslessWithDurationsAndMetadata()
    {
        var frames = VideoTestClips.Gradient(37, 29, 5);
        var path = Path.Combine(_dir, "a.webp");
        AnimatedWebP.Save(path, frames, fps: 8, VideoTestClips.Metadata());
        var (back, durations) = AnimatedImageDecoder.Decode(path);
        Assert.Equal(5, back.Count);
        for (int f = 0; f < 5; f++) Assert.Equal(frames[f].Pixels, back[f].Pixels);
        Assert.Equal([125, 125, 125, 125, 125], durations);
        Assert.Equal(VideoTestClips.Metadata(), AnimatedWebP.ReadMetadata(File.ReadAllBytes(path)));
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp-*"));
    }

    [Fact]
    public void GifWithAtMost256ColoursIsExact()
    {
        // 256 colours, noisy pixels over 96x80: long LZW streams that fill the 4096-entry table and clear it.
        var frames = VideoTestClips.FewColours(96, 80, 3, 256, seed: 1);
        var path = Path.Combine(_dir, "a.gif");
        AnimatedGif.Save(path, frames, fps: 8, VideoTestClips.Metadata());
        var (back, durations) = AnimatedImageDecoder.Decode(path);
        Assert.Equal(3, back.Count);
        for (int f = 0; f < 3; f++) Assert.Equal(frames[f].Pixels, back[f].Pixels);
        // 8 fps in 1/100 s: 13, 12, 13 (the running total stays on time).
        Assert.Equal([130, 120, 130], durations);
        Assert.Equal(VideoTestClips.Metadata(), AnimatedGif.ReadMetadata(File.ReadAllBytes(path)));
    }

    [Fact]
    public void GifWithManyColoursIsCloseAndStillRegionsStayStill()
    {
        var frames = VideoTestClips.Gradient(64, 48, 4);
        frames.Add(frames[^1]); // a repeated frame must decode identically (one palette, no dithering)
        var path = Path.Combine(_dir, "b.gif");
        AnimatedGif.Save(path, frames, fps: 10);
        var (back, durations) = AnimatedImageDecoder.Decode(path);
        Assert.Equal(5, back.Count);
        Assert.All(durations, d => Assert.Equal(100, d));
        for (int f = 0; f < frames.Count; f++)
        {
            var (mean, max) = VideoTestClips.Difference(frames[f], back[f]);
            // 256 colours without dithering for a red x green gradient at 4 blue levels: about 64 colours per
            // red-green plane, an 8x8 grid 32 levels apart, so errors up to 16 and about 5-7 on average.
            Assert.True(mean < 7.0 && max <= 20, $"frame {f}: mean {mean:F2}, max {max}");
        }
        Assert.Equal(back[3].Pixels, back[4].Pixels);
        Assert.Empty(AnimatedGif.ReadMetadata(File.ReadAllBytes(path)));
    }

    [Fact]
    public void SingleFrameAndOnePixelWork()
    {
        var one = new List<RgbImage> { new(1, 1, [10, 20, 30]) };
        var gif = Path.Combine(_dir, "one.gif");
        var webp = Path.Combine(_dir, "one.webp");
        AnimatedGif.Save(gif, one, 1);
        AnimatedWebP.Save(webp, one, 1);
        Assert.Equal(one[0].Pixels, AnimatedImageDecoder.Decode(gif).Frames[0].Pixels);
        Assert.Equal(one[0].Pixels, AnimatedImageDecoder.Decode(webp).Frames[0].Pixels);
    }

    [Fact]
    public void BadInputIsOneClearErrorAndNoFile()
    {
        var path = Path.Combine(_dir, "bad.webp");
        Assert.Throws<ArgumentException>(() => AnimatedWebP.Save(path, [], 8));
        var mixed = new List<RgbImage> { new(4, 4), new(4, 5) };
        var e = Assert.Throws<ArgumentException>(() => AnimatedGif.Save(path, mixed, 8));
        Assert.Contains("frame 1 is 4x5", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => AnimatedGif.Save(path, [new(4, 4)], 0));
        Assert.Empty(Directory.GetFiles(_dir));
    }

    [Fact]
    public void DurationsKeepTheRunningTotalOnTime()
    {
        Assert.Equal([13, 12, 13, 12], VideoEncoding.Durations(4, 8, 100));
        Assert.Equal([33, 34, 33], VideoEncoding.Durations(3, 30, 1000));
        Assert.Equal([1, 1], VideoEncoding.Durations(2, 240, 100)); // never 0 (players treat 0 as "default")
    }
}
