using SelfCascade.Evaluation;
using SelfCascade.Imaging;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Evaluation;

/// <summary>Hand-drawn test images: anti-aliased shapes on white, and the degradations the metrics must rank.</summary>
internal static class SyntheticImages
{
    public static RgbImage White(int size) => White(size, size);

    public static RgbImage White(int width, int height)
    {
        var img = new RgbImage(width, height);
        Array.Fill(img.Pixels, (byte)255);
        return img;
    }

    /// <summary>Blends a colour over every pixel by the shape's coverage, estimated with 4×4 sub-samples (anti-aliasing).</summary>
    public static void Fill(RgbImage img, Func<double, double, bool> inside, (byte R, byte G, byte B) color, bool antialias = true)
    {
        int sub = antialias ? 4 : 1;
        for (int y = 0; y < img.Height; y++)
            for (int x = 0; x < img.Width; x++)
            {
                int hits = 0;
                for (int sy = 0; sy < sub; sy++)
                    for (int sx = 0; sx < sub; sx++)
                        if (inside(x + (sx + 0.5) / sub, y + (sy + 0.5) / sub)) hits++;
                if (hits == 0) continue;
                double a = hits / (double)(sub * sub);
                int i = (y * img.Width + x) * 3;
                img.Pixels[i] = Blend(img.Pixels[i], color.R, a);
                img.Pixels[i + 1] = Blend(img.Pixels[i + 1], color.G, a);
                img.Pixels[i + 2] = Blend(img.Pixels[i + 2], color.B, a);
            }
    }

    public static void Circle(RgbImage img, double cx, double cy, double r, (byte, byte, byte) color, bool antialias = true) =>
        Fill(img, (x, y) => (x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r, color, antialias);

    public static void Square(RgbImage img, double x0, double y0, double side, (byte, byte, byte) color, bool antialias = true) =>
        Fill(img, (x, y) => x >= x0 && x <= x0 + side && y >= y0 && y <= y0 + side, color, antialias);

    public static (byte, byte, byte) RandomColor(Random rng)
    {
        // Saturated colours, far from white: one channel low, the others random.
        var c = new[] { (byte)rng.Next(0, 80), (byte)rng.Next(0, 256), (byte)rng.Next(0, 256) };
        rng.Shuffle(c);
        return (c[0], c[1], c[2]);
    }

    /// <summary>Random circles/squares (kind = 0 circles only, 1 squares only, -1 mixed); count 0 = one to three.</summary>
    public static RgbImage RandomShapes(Random rng, int size, int kind = -1, int count = 0)
    {
        var img = White(size);
        if (count <= 0) count = rng.Next(1, 4);
        for (int k = 0; k < count; k++)
        {
            double extent = size * (0.18 + 0.22 * rng.NextDouble());
            double x = rng.NextDouble() * (size - extent), y = rng.NextDouble() * (size - extent);
            bool circle = kind == 0 || (kind == -1 && rng.Next(2) == 0);
            if (circle) Circle(img, x + extent / 2, y + extent / 2, extent / 2, RandomColor(rng));
            else Square(img, x, y, extent, RandomColor(rng));
        }
        return img;
    }

    public static List<RgbImage> RandomSet(int seed, int count, int size)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => RandomShapes(rng, size)).ToList();
    }

    /// <summary>Gaussian blur (σ in pixels, kernel radius 3σ, replicated borders).</summary>
    public static RgbImage Blur(RgbImage img, double sigma)
    {
        if (sigma <= 0) return img;
        using var scope = NewDisposeScope();
        int radius = Math.Max(1, (int)Math.Ceiling(3 * sigma));
        var i = arange(-radius, radius + 1, ScalarType.Float64);
        var g = (-(i * i) / (2 * sigma * sigma)).exp();
        g = g / g.sum();
        var x = ImageTensors.ToUnit(img);
        x = nn.functional.pad(x, [radius, radius, radius, radius], TorchSharp.PaddingModes.Replicate);
        x = nn.functional.conv2d(x, g.reshape(1, 1, 1, -1).expand(3, 1, 1, -1).contiguous(), groups: 3);
        x = nn.functional.conv2d(x, g.reshape(1, 1, -1, 1).expand(3, 1, -1, 1).contiguous(), groups: 3);
        return RgbImage.FromUnitTensor(x[0]);
    }

    /// <summary>Adds N(0, std²) noise (std in [0, 1] units) per channel, seeded, clamped.</summary>
    public static RgbImage Noise(RgbImage img, double std, int seed)
    {
        var rng = new Random(seed);
        var result = new RgbImage(img.Width, img.Height);
        for (int k = 0; k < img.Pixels.Length; k++)
        {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
            double z = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
            result.Pixels[k] = (byte)Math.Clamp(Math.Round(img.Pixels[k] + 255 * std * z), 0, 255);
        }
        return result;
    }

    /// <summary>The repetition failure: k×k copies of the image shrunk to size/k (box average), on white.</summary>
    public static RgbImage Tile(RgbImage img, int k)
    {
        if (k == 1) return img;
        using var scope = NewDisposeScope();
        int t = img.Width / k;
        var small = RgbImage.FromUnitTensor(ImageTensors.ResizeAntialiased(ImageTensors.ToUnit(img), t, t)[0]);
        var result = White(img.Width, img.Height);
        for (int ty = 0; ty < k; ty++)
            for (int tx = 0; tx < k; tx++)
                for (int row = 0; row < t; row++)
                    Array.Copy(small.Pixels, row * t * 3, result.Pixels, ((ty * t + row) * img.Width + tx * t) * 3, t * 3);
        return result;
    }

    /// <summary>Nearest-neighbour upscaling by an integer factor (each pixel becomes a f×f block).</summary>
    public static RgbImage UpscaleNearest(RgbImage img, int f)
    {
        var result = new RgbImage(img.Width * f, img.Height * f);
        for (int y = 0; y < result.Height; y++)
            for (int x = 0; x < result.Width; x++)
                Array.Copy(img.Pixels, ((y / f) * img.Width + x / f) * 3, result.Pixels, (y * result.Width + x) * 3, 3);
        return result;
    }

    private static byte Blend(byte under, byte over, double a) => (byte)Math.Round(under * (1 - a) + over * a);
}
