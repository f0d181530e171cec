using SelfCascade.Imaging;

namespace SelfCascade.Data.Motion;

/// <summary>One synthetic clip: its caption ("red heart, zooming in"), frames and ground-truth motion.</summary>
public sealed record MotionClip(string Caption, string DesignCaption, IReadOnlyList<RgbImage> Frames, MotionTrack Motion);

/// <summary>
/// Makes clips with known motion from one emoji render: every frame is the still design pushed through that frame's
/// affine map (and colour matrix), resampled from the render (best at 4x the clip size: 128 px for 32 px clips) with
/// an n x n box of bilinear samples per output pixel, white outside the design. An integer translation therefore
/// shifts pixels exactly. Deterministic: the same design, kind and seed give the same clip bit for bit.
/// </summary>
public static class MotionClipSynthesizer
{
    public const int DefaultFrames = 8, DefaultSize = 32, DefaultSupersample = 4;

    /// <summary>A clip whose motion magnitudes are drawn from <paramref name="seed"/> (ranges in <see cref="RandomParameters"/>).</summary>
    public static MotionClip Make(RgbImage design, string designCaption, MotionKind kind, int seed,
        int frames = DefaultFrames, int size = DefaultSize, int supersample = DefaultSupersample)
    {
        var track = Track(kind, RandomParameters(kind, new Random(seed), size), frames, size);
        return new MotionClip($"{designCaption}, {MotionKinds.Phrase(kind)}", designCaption, Render(design, track, size, supersample), track);
    }

    /// <summary>
    /// Motion magnitudes for a clip of <paramref name="size"/> px (distances scale with it): moves 1-2 px a frame at
    /// 32 px (whole pixels), zoom 4-8 % a frame, rotation 8-15 degrees a frame, bounce 15-25 % of the size high,
    /// hue 20-40 degrees a frame.
    /// </summary>
    public static Dictionary<string, double> RandomParameters(MotionKind kind, Random rng, int size)
    {
        double unit = size / 32.0;
        return kind switch
        {
            MotionKind.MoveLeft or MotionKind.MoveRight or MotionKind.MoveUp or MotionKind.MoveDown =>
                new() { ["pixels_per_frame"] = Math.Max(1, Math.Round((1 + rng.Next(2)) * unit)) },
            MotionKind.ZoomIn => new() { ["scale_per_frame"] = 1.04 + 0.04 * rng.NextDouble(), ["start_scale"] = 0.75 },
            MotionKind.ZoomOut => new() { ["scale_per_frame"] = 1 / (1.04 + 0.04 * rng.NextDouble()), ["start_scale"] = 1.25 },
            MotionKind.RotateClockwise => new() { ["degrees_per_frame"] = 8 + 7 * rng.NextDouble(), ["scale"] = 0.85 },
            MotionKind.RotateCounterclockwise => new() { ["degrees_per_frame"] = -(8 + 7 * rng.NextDouble()), ["scale"] = 0.85 },
            MotionKind.Bounce => new() { ["height"] = size * (0.15 + 0.10 * rng.NextDouble()), ["period_frames"] = 4, ["scale"] = 0.75 },
            MotionKind.ColourShift => new() { ["hue_degrees_per_frame"] = 20 + 20 * rng.NextDouble() },
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
    }

    /// <summary>The per-frame transforms of a motion with the given parameters (the keys of <see cref="RandomParameters"/>).</summary>
    public static MotionTrack Track(MotionKind kind, IReadOnlyDictionary<string, double> p, int frames, int size)
    {
        if (frames < 1) throw new ArgumentOutOfRangeException(nameof(frames), "a clip needs at least one frame");
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size));
        double c = size / 2.0;
        var list = new List<MotionFrame>(frames);
        for (int t = 0; t < frames; t++)
        {
            double[] colour = MotionFrame.IdentityColour;
            double[] affine;
            switch (kind)
            {
                case MotionKind.MoveLeft: affine = Translation(-p["pixels_per_frame"] * t, 0); break;
                case MotionKind.MoveRight: affine = Translation(p["pixels_per_frame"] * t, 0); break;
                case MotionKind.MoveUp: affine = Translation(0, -p["pixels_per_frame"] * t); break;
                case MotionKind.MoveDown: affine = Translation(0, p["pixels_per_frame"] * t); break;
                case MotionKind.ZoomIn or MotionKind.ZoomOut:
                    affine = AboutCentre(p["start_scale"] * Math.Pow(p["scale_per_frame"], t), 0, c, 0, 0); break;
                case MotionKind.RotateClockwise or MotionKind.RotateCounterclockwise:
                    // Image y points down, so a positive angle turns clockwise on screen.
                    affine = AboutCentre(p["scale"], p["degrees_per_frame"] * t, c, 0, 0); break;
                case MotionKind.Bounce:
                    {
                        double h = p["height"];
                        double lift = h * Math.Abs(Math.Sin(Math.PI * t / p["period_frames"]));
                        affine = AboutCentre(p["scale"], 0, c, 0, h / 2 - lift);
                        break;
                    }
                case MotionKind.ColourShift:
                    affine = Translation(0, 0);
                    colour = HueRotation(p["hue_degrees_per_frame"] * t);
                    break;
                default: throw new ArgumentOutOfRangeException(nameof(kind));
            }
            list.Add(new MotionFrame(affine, colour));
        }
        return new MotionTrack(kind, new Dictionary<string, double>(p), list);
    }

    /// <summary>Renders each frame of <paramref name="track"/> from the design image (any size; square expected).</summary>
    public static IReadOnlyList<RgbImage> Render(RgbImage design, MotionTrack track, int size, int supersample = DefaultSupersample)
    {
        if (supersample < 1) throw new ArgumentOutOfRangeException(nameof(supersample));
        double sx = design.Width / (double)size, sy = design.Height / (double)size;
        var frames = new List<RgbImage>(track.Frames.Count);
        var acc = new double[3];
        foreach (var f in track.Frames)
        {
            var img = new RgbImage(size, size);
            var m = f.Colour;
            for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                acc[0] = acc[1] = acc[2] = 0;
                for (int j = 0; j < supersample; j++)
                for (int i = 0; i < supersample; i++)
                {
                    var (u, v) = f.Invert(x + (i + 0.5) / supersample, y + (j + 0.5) / supersample);
                    SampleBilinear(design, u * sx - 0.5, v * sy - 0.5, acc);
                }
                double n = 255.0 * supersample * supersample;
                double r = acc[0] / n, g = acc[1] / n, b = acc[2] / n;
                int o = (y * size + x) * 3;
                img.Pixels[o] = ToByte(m[0] * r + m[1] * g + m[2] * b);
                img.Pixels[o + 1] = ToByte(m[3] * r + m[4] * g + m[5] * b);
                img.Pixels[o + 2] = ToByte(m[6] * r + m[7] * g + m[8] * b);
            }
            frames.Add(img);
        }
        return frames;
    }

    /// <summary>Adds the bilinear sample at pixel-index coordinates (x, y) to acc; pixels outside the image are white.</summary>
    private static void SampleBilinear(RgbImage img, double x, double y, double[] acc)
    {
        int x0 = (int)Math.Floor(x), y0 = (int)Math.Floor(y);
        double fx = x - x0, fy = y - y0;
        for (int c = 0; c < 3; c++)
        {
            double v00 = Pixel(img, x0, y0, c), v10 = Pixel(img, x0 + 1, y0, c), v01 = Pixel(img, x0, y0 + 1, c), v11 = Pixel(img, x0 + 1, y0 + 1, c);
            acc[c] += (v00 * (1 - fx) + v10 * fx) * (1 - fy) + (v01 * (1 - fx) + v11 * fx) * fy;
        }
    }

    private static double Pixel(RgbImage img, int x, int y, int c) =>
        (uint)x < (uint)img.Width && (uint)y < (uint)img.Height ? img.Pixels[(y * img.Width + x) * 3 + c] : 255;

    private static byte ToByte(double unit) => (byte)Math.Clamp(Math.Round(unit * 255, MidpointRounding.AwayFromZero), 0, 255);

    private static double[] Translation(double tx, double ty) => [1, 0, tx, 0, 1, ty];

    /// <summary>Scale s and rotation (degrees) about the centre (c, c), then a translation.</summary>
    private static double[] AboutCentre(double s, double degrees, double c, double tx, double ty)
    {
        double a = degrees * Math.PI / 180, cos = s * Math.Cos(a), sin = s * Math.Sin(a);
        // p' = c + R s (p - c) + t
        return [cos, -sin, c - cos * c + sin * c + tx, sin, cos, c - sin * c - cos * c + ty];
    }

    /// <summary>The W3C filter-effects hueRotate matrix: greys (and so the white background) stay as they are.</summary>
    public static double[] HueRotation(double degrees)
    {
        double a = degrees * Math.PI / 180, cos = Math.Cos(a), sin = Math.Sin(a);
        return
        [
            0.213 + cos * 0.787 - sin * 0.213, 0.715 - cos * 0.715 - sin * 0.715, 0.072 - cos * 0.072 + sin * 0.928,
            0.213 - cos * 0.213 + sin * 0.143, 0.715 + cos * 0.285 + sin * 0.140, 0.072 - cos * 0.072 - sin * 0.283,
            0.213 - cos * 0.213 - sin * 0.787, 0.715 - cos * 0.715 + sin * 0.715, 0.072 + cos * 0.928 + sin * 0.072,
        ];
    }
}
