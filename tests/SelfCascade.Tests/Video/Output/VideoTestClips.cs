using SelfCascade.Imaging;

namespace SelfCascade.Tests.Video.Output;

/// <summary>Small deterministic clips for the writer tests.</summary>
internal static class VideoTestClips
{
    /// <summary>A smooth colour gradient with a dark square moving 3 px a frame (many colours, codec-friendly).</summary>
    public static List<RgbImage> Gradient(int width, int height, int frames)
    {
        var list = new List<RgbImage>();
        for (int f = 0; f < frames; f++)
        {
            var img = new RgbImage(width, height);
            for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int o = (y * width + x) * 3;
                bool square = x >= 4 + 3 * f && x < 16 + 3 * f && y >= height / 4 && y < height / 4 + 12;
                img.Pixels[o] = square ? (byte)20 : (byte)(255 * x / Math.Max(1, width - 1));
                img.Pixels[o + 1] = square ? (byte)30 : (byte)(255 * y / Math.Max(1, height - 1));
                img.Pixels[o + 2] = square ? (byte)200 : (byte)((128 + 8 * f) & 255);
            }
            list.Add(img);
        }
        return list;
    }

    /// <summary>Pixels drawn from a fixed set of <paramref name="colours"/> colours (pseudo-random per pixel).</summary>
    public static List<RgbImage> FewColours(int width, int height, int frames, int colours, int seed)
    {
        var rng = new Random(seed);
        var palette = Enumerable.Range(0, colours).Select(_ => (R: (byte)rng.Next(256), G: (byte)rng.Next(256), B: (byte)rng.Next(256))).ToArray();
        var list = new List<RgbImage>();
        for (int f = 0; f < frames; f++)
        {
            var img = new RgbImage(width, height);
            for (int i = 0; i < width * height; i++)
            {
                var c = palette[rng.Next(colours)];
                img.Pixels[i * 3] = c.R; img.Pixels[i * 3 + 1] = c.G; img.Pixels[i * 3 + 2] = c.B;
            }
            list.Add(img);
        }
        return list;
    }

    public static Dictionary<string, string> Metadata() => new()
    {
        ["prompt"] = "red heart, zooming in <&> \"quoted\"",
        ["negative_prompt"] = "",
        ["seed"] = "42",
        ["frames"] = "8",
        ["note"] = "café ☕",
        ["parameters"] = "red heart\nNegative prompt: \nSteps: 25, Seed: 42",
    };

    public static (double Mean, int Max) Difference(RgbImage a, RgbImage b)
    {
        Assert.Equal((a.Width, a.Height), (b.Width, b.Height));
        long sum = 0; int max = 0;
        for (int i = 0; i < a.Pixels.Length; i++)
        {
            int d = Math.Abs(a.Pixels[i] - b.Pixels[i]);
            sum += d; max = Math.Max(max, d);
        }
        return (sum / (double)a.Pixels.Length, max);
    }
}
