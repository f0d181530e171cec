using SelfCascade.Imaging;
using SelfCascade.Tests.Support;
using SelfCascade.Video.Evaluation;

namespace SelfCascade.Tests.Video.Evaluation;

/// <summary>The temporal metrics on synthetic clips whose answers are known in closed form.</summary>
public sealed class TemporalMetricsTests
{
    public TemporalMetricsTests() => TorchSetup.Ensure();

    private static RgbImage Image(int w, int h, Func<int, int, byte> value)
    {
        var img = new RgbImage(w, h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++) img.Pixels[(y * w + x) * 3 + c] = value(x, y);
        return img;
    }

    private static RgbImage Gray(int size, byte v) => Image(size, size, (_, _) => v);

    /// <summary>Frames whose every pixel is 0, 51, 102, ...: each step is 51/255 = 0.2.</summary>
    private static RgbImage[] GraySteps(int size, int frames, int step = 51) =>
        Enumerable.Range(0, frames).Select(t => Gray(size, (byte)(t * step))).ToArray();

    [Fact]
    public void AStaticClipHasNoFrameDifference()
    {
        var rng = new Random(3);
        var still = Image(12, 9, (_, _) => (byte)rng.Next(256));
        var clip = Enumerable.Repeat(still, 5).ToArray();
        Assert.Equal(0.0, TemporalMetrics.MeanFrameDifference(clip));
        Assert.Equal(0.0, TemporalMetrics.FrameDifferenceError(clip, clip));
    }

    [Fact]
    public void UniformStepsGiveTheStep()
    {
        Assert.Equal(0.2, TemporalMetrics.MeanFrameDifference(GraySteps(6, 4)), 12);
        Assert.Equal(0.4, TemporalMetrics.MeanFrameDifference(GraySteps(6, 3, 102)), 12);
    }

    [Theory]
    [InlineData(1, 1.0)] // a 2-px-period checkerboard moved by 1 px: every pixel flips between 0 and 1
    [InlineData(2, 0.0)] // moved by its period: the same image
    [InlineData(3, 1.0)]
    public void APannedCheckerboardFlipsEveryPixelOrNone(int k, double expected)
    {
        // Panned with wrap-around by k px a frame.
        var frames = Enumerable.Range(0, 4).Select(t => Image(8, 6, (x, y) => (byte)(((x + t * k + y) % 2) * 255))).ToArray();
        Assert.Equal(expected, TemporalMetrics.MeanFrameDifference(frames), 12);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void APannedLineChangesTwoColumnsPerFrame(int k)
    {
        // A white 1-px column on black moving right by k px a frame (no wrap): each pair differs in the column it left
        // and the one it reached, 2 of 16 columns, whatever k is.
        const int w = 16;
        var frames = Enumerable.Range(0, 4).Select(t => Image(w, 5, (x, _) => (byte)(x == 2 + t * k ? 255 : 0))).ToArray();
        Assert.Equal(2.0 / w, TemporalMetrics.MeanFrameDifference(frames), 12);
    }

    [Fact]
    public void TheErrorAgainstAnUpsampledBaseCountsOnlyChangedMotion()
    {
        var baseClip = GraySteps(8, 4);                       // 8 px, +0.2 a frame
        Assert.Equal(0.0, TemporalMetrics.FrameDifferenceError(GraySteps(16, 4), baseClip), 12);            // same motion at 2x
        Assert.Equal(25 / 255.0, TemporalMetrics.FrameDifferenceError(GraySteps(16, 4, 50), GraySteps(8, 4, 25)), 12); // twice the change
        Assert.Equal(0.2, TemporalMetrics.FrameDifferenceError(Enumerable.Repeat(Gray(16, 9), 4).ToArray(), baseClip), 12); // frozen
        Assert.Equal(0.4, TemporalMetrics.FrameDifferenceError(GraySteps(16, 4).Reverse().ToArray(), baseClip), 12);        // reversed
        // A constant brightness offset is not motion.
        var brighter = Enumerable.Range(0, 4).Select(t => Gray(16, (byte)(t * 51 + 20))).ToArray();
        Assert.Equal(0.0, TemporalMetrics.FrameDifferenceError(brighter, GraySteps(8, 4)), 12);
    }

    [Fact]
    public void TheBaseIsUpsampledFrameByFrameBilinearly()
    {
        // A horizontal ramp at 4 px (0, 85, 170, 255) appearing after a black frame; at 8 px the clip is the ramp
        // upsampled bilinearly (align_corners=false): edge pixels clamp, inner ones interpolate. Error 0 only if the
        // reference is resized that way.
        byte[] ramp = [0, 85, 170, 255];
        var small = new[] { Image(4, 2, (_, _) => 0), Image(4, 2, (x, _) => ramp[x]) };
        double[] up = [0, 21.25, 63.75, 106.25, 148.75, 191.25, 233.75, 255];
        // Rounded to bytes the upsampled ramp is off by at most 0.25/255 per pixel, on 6 of 8 columns.
        var large = new[] { Image(8, 4, (_, _) => 0), Image(8, 4, (x, _) => (byte)Math.Round(up[x], MidpointRounding.ToEven)) };
        double expected = up.Sum(v => Math.Abs(Math.Round(v, MidpointRounding.ToEven) - v)) / 8 / 255;
        Assert.Equal(expected, TemporalMetrics.FrameDifferenceError(large, small), 12);
        Assert.True(expected < 1e-3);
    }

    [Fact]
    public void BadClipsAreOneClearError()
    {
        var one = new[] { Gray(4, 0) };
        Assert.Contains("at least 2 frames", Assert.Throws<ArgumentException>(() => TemporalMetrics.MeanFrameDifference(one)).Message);
        Assert.Contains("3 frames, the reference 2", Assert.Throws<ArgumentException>(() =>
            TemporalMetrics.FrameDifferenceError(GraySteps(4, 3), GraySteps(4, 2))).Message);
        Assert.Contains("one size", Assert.Throws<ArgumentException>(() =>
            TemporalMetrics.MeanFrameDifference([Gray(4, 0), Gray(5, 0)])).Message);
    }
}
