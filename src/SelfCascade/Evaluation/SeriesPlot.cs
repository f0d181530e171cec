using SelfCascade.Imaging;
using SelfCascade.Training;
using SkiaSharp;

namespace SelfCascade.Evaluation;

/// <summary>A line plot of several named series (e.g. FD against training steps for tuned vs fine-tuned), as PNG.</summary>
public static class SeriesPlot
{
    public const int Width = 800, Height = 480;
    private const int Left = 80, Right = 200, Top = 40, Bottom = 50;
    private static readonly SKColor[] Colors = [new(31, 119, 180), new(255, 127, 14), new(44, 160, 44), new(214, 39, 40), new(148, 103, 189)];

    public static void Save(string path, string title, string xLabel, IReadOnlyList<(string Name, IReadOnlyList<(double X, double Y)> Points)> series)
    {
        var info = new SKImageInfo(Width, Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var surface = SKSurface.Create(info) ?? throw new InvalidOperationException("could not create a drawing surface");
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using var axis = new SKPaint { Color = SKColors.Black, StrokeWidth = 1, Style = SKPaintStyle.Stroke };
        using var grid = new SKPaint { Color = new SKColor(230, 230, 230), StrokeWidth = 1, Style = SKPaintStyle.Stroke };
        using var ink = new SKPaint { Color = SKColors.Black, Style = SKPaintStyle.Fill };
        int plotW = Width - Left - Right, plotH = Height - Top - Bottom;
        var all = series.SelectMany(s => s.Points).Where(p => double.IsFinite(p.Y)).ToList();
        double x0 = all.Count > 0 ? all.Min(p => p.X) : 0, x1 = all.Count > 0 ? all.Max(p => p.X) : 1;
        if (x1 <= x0) x1 = x0 + 1;
        double y1 = all.Count > 0 ? all.Max(p => p.Y) : 1;
        var (yt, ys) = LossPlot.NiceTicks(0, Math.Max(y1, 1e-9), 5);
        double yMax = Math.Max(y1, yt[^1]);
        float X(double v) => Left + (float)((v - x0) / (x1 - x0) * plotW);
        float Y(double v) => Top + plotH - (float)(v / yMax * plotH);
        foreach (var t in yt)
        {
            canvas.DrawLine(Left, Y(t), Left + plotW, Y(t), grid);
            var label = t.ToString(ys >= 1 ? "F0" : "F2", System.Globalization.CultureInfo.InvariantCulture);
            BitmapFont.Draw(canvas, label, Left - 8 - BitmapFont.Measure(label, 2f), Y(t) - 7, 2, ink);
        }
        var (xt, xs) = LossPlot.NiceTicks(x0, x1, 6);
        foreach (var t in xt.Where(t => t >= x0 && t <= x1))
        {
            var label = t.ToString("F0", System.Globalization.CultureInfo.InvariantCulture);
            canvas.DrawLine(X(t), Top + plotH, X(t), Top + plotH + 5, axis);
            BitmapFont.Draw(canvas, label, X(t) - BitmapFont.Measure(label, 2f) / 2, Top + plotH + 10, 2, ink);
        }
        canvas.DrawLine(Left, Top, Left, Top + plotH, axis);
        canvas.DrawLine(Left, Top + plotH, Left + plotW, Top + plotH, axis);
        BitmapFont.Draw(canvas, title, Left, 10, 2, ink);
        BitmapFont.Draw(canvas, xLabel, Left + plotW / 2f - BitmapFont.Measure(xLabel, 2f) / 2, Height - 20, 2, ink);
        for (int i = 0; i < series.Count; i++)
        {
            using var pen = new SKPaint { Color = Colors[i % Colors.Length], StrokeWidth = 3, IsAntialias = true, Style = SKPaintStyle.Stroke };
            using var dot = new SKPaint { Color = Colors[i % Colors.Length], IsAntialias = true, Style = SKPaintStyle.Fill };
            var pts = series[i].Points.Where(p => double.IsFinite(p.Y)).OrderBy(p => p.X).Select(p => new SKPoint(X(p.X), Y(p.Y))).ToArray();
            if (pts.Length > 1) canvas.DrawPoints(SKPointMode.Polygon, pts, pen);
            foreach (var p in pts) canvas.DrawCircle(p, 5, dot);
            canvas.DrawRect(Left + plotW + 15, Top + 10 + i * 24, 14, 14, dot);
            BitmapFont.Draw(canvas, series[i].Name, Left + plotW + 35, Top + 11 + i * 24, 2, ink);
        }
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100) ?? throw new InvalidOperationException("PNG encoding failed");
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllBytes(full, data.ToArray());
    }
}
