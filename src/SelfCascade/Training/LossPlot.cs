using SelfCascade.Imaging;
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
            BitmapFont.Draw(canvas, label, Left - 8 - BitmapFont.Measure(label, 2), Y(t) - 7, 2, ink);
        }
        var (xticks, xstep) = NiceTicks(x0, x1, 6);
        foreach (var t in xticks.Where(t => t >= x0 && t <= x1))
        {
            float x = X((long)t);
            canvas.DrawLine(x, Top + plotH, x, Top + plotH + 5, axis);
            var label = FormatTick(t, xstep);
            BitmapFont.Draw(canvas, label, x - BitmapFont.Measure(label, 2) / 2f, Top + plotH + 10, 2, ink);
        }
        canvas.DrawLine(Left, Top, Left, Top + plotH, axis);
        canvas.DrawLine(Left, Top + plotH, Left + plotW, Top + plotH, axis);
        BitmapFont.Draw(canvas, "step", Left + plotW / 2f - BitmapFont.Measure("step", 2) / 2f, Height - 18, 2, ink);
        BitmapFont.Draw(canvas, title, Left, 8, 2, ink);

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
