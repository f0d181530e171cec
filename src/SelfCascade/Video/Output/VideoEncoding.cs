using SelfCascade.Imaging;

namespace SelfCascade.Video.Output;

/// <summary>Checks shared by the video writers: at least one frame, all of one size, a usable frame rate.</summary>
public static class VideoEncoding
{
    /// <summary>Highest accepted frame rate; above it the per-frame durations of GIF (1/100 s) and WebP (1 ms) lose meaning.</summary>
    public const double MaxFps = 240;

    public static (int Width, int Height) Validate(IReadOnlyList<RgbImage> frames, double fps)
    {
        if (frames.Count == 0) throw new ArgumentException("a video needs at least one frame");
        if (!(fps > 0 && fps <= MaxFps)) throw new ArgumentOutOfRangeException(nameof(fps), $"frame rate {fps} must be in (0, {MaxFps}]");
        int w = frames[0].Width, h = frames[0].Height;
        for (int i = 1; i < frames.Count; i++)
            if (frames[i].Width != w || frames[i].Height != h)
                throw new ArgumentException($"frame {i} is {frames[i].Width}x{frames[i].Height}, frame 0 is {w}x{h}: all frames must be one size");
        return (w, h);
    }

    /// <summary>
    /// Per-frame durations in units of 1/<paramref name="unitsPerSecond"/> s, rounded so that the running total stays
    /// within half a unit of the exact time (8 fps in GIF centiseconds: 13, 12, 13, 12, ... not 12 everywhere).
    /// </summary>
    public static int[] Durations(int count, double fps, int unitsPerSecond)
    {
        var d = new int[count];
        for (int i = 0; i < count; i++)
        {
            long start = (long)Math.Round(i * unitsPerSecond / fps, MidpointRounding.AwayFromZero);
            long end = (long)Math.Round((i + 1) * unitsPerSecond / fps, MidpointRounding.AwayFromZero);
            d[i] = (int)Math.Max(1, end - start);
        }
        return d;
    }
}
