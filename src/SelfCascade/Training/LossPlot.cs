using System.Globalization;
using SkiaSharp;

namespace SelfCascade.Training;

/// <summary>
/// Draws the loss curve as a PNG: the raw per-step loss in light grey, a smoothed curve (TensorBoard-style
/// debiased exponential smoothing) in blue, axes with tick labels. Labels use a built-in 5x7 pixel font, so the
/// plot needs no system fonts (the Linux SkiaSharp assets carry none).
/// </summary>
public static class LossPlot
{
    public const int Width = 800, Height = 480;
    private const int Left = 70, Right = 20, Top = 30, Bottom = 50;

    /// <summary>Debiased exponential smoothing with weight <paramref name="weight"/> (0 = raw).</summary>
    public static double[] Smooth(IReadOnlyList<double> values, double weight)
    {
        var result = new double[values.Count];
        double last = 0, norm = 0;
        for (int i = 0; i < values.Count; i++)
        {
            last = last * weight + (1 - weight) * values[i];
            norm = norm * weight + (1 - weight);
            result[i] = last / norm;
        }
        return result;
    }

    /// <summary>Encodes the plot of <paramref name="records"/> as PNG bytes.</summary>
    public static byte[] Render(IReadOnlyList<LossRecord> records, string title = "loss")
    {
        var info = new SKImageInfo(Width, Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var surface = SKSurface.Create(info) ?? throw new InvalidOperationException("could not create a drawing surface");
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using var axis = new SKPaint { Color = SKColors.Black, StrokeWidth = 1, IsAntialias = false, Style = SKPaintStyle.Stroke };
        using var grid = new SKPaint { Color = new SKColor(230, 230, 230), StrokeWidth = 1, Style = SKPaintStyle.Stroke };
        using var raw = new SKPaint { Color = new SKColor(190, 190, 190), StrokeWidth = 1, IsAntialias = true, Style = SKPaintStyle.Stroke };
        using var smooth = new SKPaint { Color = new SKColor(31, 119, 180), StrokeWidth = 2, IsAntialias = true, Style = SKPaintStyle.Stroke };
        using var ink = new SKPaint { Color = SKColors.Black, Style = SKPaintStyle.Fill };
        int plotW = Width - Left - Right, plotH = Height - Top - Bottom;

        var finite = records.Where(r => double.IsFinite(r.Loss)).ToList();
        long x0 = finite.Count > 0 ? finite[0].Step : 0, x1 = finite.Count > 0 ? finite[^1].Step : 1;
        if (x1 <= x0) x1 = x0 + 1;
        var smoothed = Smooth(finite.Select(r => r.Loss).ToList(), finite.Count < 20 ? 0.0 : 0.9);
        double yMax = finite.Count > 0 ? Math.Max(finite.Max(r => r.Loss), 1e-12) : 1, yMin = 0;
        var (ticks, step) = NiceTicks(yMin, yMax, 5);
        yMax = Math.Max(yMax, ticks[^1]);

        float X(long s) => Left + (float)((s - x0) / (double)(x1 - x0) * plotW);
        float Y(double v) => Top + plotH - (float)((v - yMin) / (yMax - yMin) * plotH);

        foreach (var t in ticks)
        {
            canvas.DrawLine(Left, Y(t), Left + plotW, Y(t), grid);
            var label = FormatTick(t, step);
            PixelFont.Draw(canvas, label, Left - 8 - PixelFont.Measure(label, 2), Y(t) - 7, 2, ink);
        }
        var (xticks, xstep) = NiceTicks(x0, x1, 6);
        foreach (var t in xticks.Where(t => t >= x0 && t <= x1))
        {
            float x = X((long)t);
            canvas.DrawLine(x, Top + plotH, x, Top + plotH + 5, axis);
            var label = FormatTick(t, xstep);
            PixelFont.Draw(canvas, label, x - PixelFont.Measure(label, 2) / 2f, Top + plotH + 10, 2, ink);
        }
        canvas.DrawLine(Left, Top, Left, Top + plotH, axis);
        canvas.DrawLine(Left, Top + plotH, Left + plotW, Top + plotH, axis);
        PixelFont.Draw(canvas, "step", Left + plotW / 2f - PixelFont.Measure("step", 2) / 2f, Height - 18, 2, ink);
        PixelFont.Draw(canvas, title, Left, 8, 2, ink);

        if (finite.Count > 0)
        {
            var rawPoints = finite.Select(r => new SKPoint(X(r.Step), Y(r.Loss))).ToArray();
            var smoothPoints = finite.Select((r, i) => new SKPoint(X(r.Step), Y(smoothed[i]))).ToArray();
            canvas.Save();
            canvas.ClipRect(new SKRect(Left, Top, Left + plotW, Top + plotH));
            canvas.DrawPoints(SKPointMode.Polygon, rawPoints, raw);
            canvas.DrawPoints(SKPointMode.Polygon, smoothPoints, smooth);
            canvas.Restore();
        }
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100) ?? throw new InvalidOperationException("PNG encoding failed");
        return data.ToArray();
    }

    /// <summary>Writes the plot atomically (temporary file, then rename).</summary>
    public static void Save(string path, IReadOnlyList<LossRecord> records, string title = "loss")
    {
        var bytes = Render(records, title);
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = full + ".tmp";
        File.WriteAllBytes(tmp, bytes);
        File.Move(tmp, full, overwrite: true);
    }

    /// <summary>Round tick values (1, 2, 5 × 10^k spacing) covering [lo, hi].</summary>
    public static (double[] Ticks, double Step) NiceTicks(double lo, double hi, int count)
    {
        double span = Math.Max(hi - lo, 1e-12);
        double raw = span / Math.Max(1, count);
        double mag = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double step = new[] { 1.0, 2.0, 5.0, 10.0 }.Select(m => m * mag).First(s => s >= raw);
        double start = Math.Floor(lo / step) * step;
        var ticks = new List<double>();
        for (double t = start; t <= hi + step * 0.999; t += step) ticks.Add(Math.Round(t / step) * step);
        return (ticks.ToArray(), step);
    }

    private static string FormatTick(double v, double step)
    {
        int decimals = Math.Max(0, (int)-Math.Floor(Math.Log10(step)));
        return v.ToString("F" + Math.Min(decimals, 6), CultureInfo.InvariantCulture);
    }
}

/// <summary>A 5x7 pixel font for digits, '.', '-', '+' and lowercase letters, drawn as filled squares.</summary>
internal static class PixelFont
{
    // Each glyph: 7 rows of 5 bits (MSB = left column).
    private static readonly Dictionary<char, byte[]> Glyphs = new()
    {
        ['0'] = [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E], ['1'] = [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        ['2'] = [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F], ['3'] = [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        ['4'] = [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02], ['5'] = [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        ['6'] = [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E], ['7'] = [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        ['8'] = [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E], ['9'] = [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        ['.'] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C], ['-'] = [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        ['+'] = [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00], [' '] = [0, 0, 0, 0, 0, 0, 0],
        ['a'] = [0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F], ['b'] = [0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E],
        ['c'] = [0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E], ['d'] = [0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F],
        ['e'] = [0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E], ['f'] = [0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08],
        ['g'] = [0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x0E], ['h'] = [0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11],
        ['i'] = [0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E], ['k'] = [0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12],
        ['l'] = [0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E], ['m'] = [0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11],
        ['n'] = [0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11], ['o'] = [0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E],
        ['p'] = [0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10], ['r'] = [0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10],
        ['s'] = [0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E], ['t'] = [0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06],
        ['u'] = [0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D], ['v'] = [0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04],
        ['w'] = [0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A], ['x'] = [0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11],
        ['y'] = [0x00, 0x00, 0x11, 0x11, 0x0F, 0x01, 0x0E], ['z'] = [0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F],
        ['_'] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F], ['('] = [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        [')'] = [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08], ['/'] = [0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10],
    };

    public static float Measure(string text, float scale) => text.Length * 6 * scale - scale;

    public static void Draw(SKCanvas canvas, string text, float x, float y, float scale, SKPaint paint)
    {
        foreach (var ch in text.ToLowerInvariant())
        {
            if (Glyphs.TryGetValue(ch, out var rows))
                for (int r = 0; r < 7; r++)
                    for (int c = 0; c < 5; c++)
                        if ((rows[r] >> (4 - c) & 1) != 0)
                            canvas.DrawRect(x + c * scale, y + r * scale, scale, scale, paint);
            x += 6 * scale;
        }
    }
}
