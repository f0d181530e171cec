using SelfCascade.Imaging;
using SkiaSharp;
using Svg.Skia;

namespace SelfCascade.Data;

/// <summary>
/// Renders a standalone SVG with Svg.Skia onto a white square: the viewBox scaled to fit (aspect kept), centred,
/// alpha composited on white.
/// </summary>
public static class IconRenderer
{
    /// <summary>
    /// One image per size. Throws <see cref="InvalidDataException"/> when the SVG does not parse or draws nothing
    /// (every pixel white at some size); the caller counts those as broken.
    /// </summary>
    public static IReadOnlyList<RgbImage> Render(string svg, double viewBoxWidth, double viewBoxHeight, IReadOnlyList<int> sizes)
    {
        if (viewBoxWidth <= 0 || viewBoxHeight <= 0) throw new InvalidDataException($"viewBox {viewBoxWidth}x{viewBoxHeight} is empty");
        using var document = new SKSvg();
        SKPicture? picture;
        try { picture = document.FromSvg(svg); }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new InvalidDataException($"SVG does not parse: {e.Message}", e);
        }
        if (picture is null) throw new InvalidDataException("SVG produced no drawing");

        var images = new List<RgbImage>(sizes.Count);
        foreach (var size in sizes)
        {
            var image = Draw(picture, (float)viewBoxWidth, (float)viewBoxHeight, size);
            if (IsBlank(image)) throw new InvalidDataException($"drawing is empty at {size}px");
            images.Add(image);
        }
        return images;
    }

    private static RgbImage Draw(SKPicture picture, float w, float h, int size)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.White);
            float scale = Math.Min(size / w, size / h);
            canvas.Translate((size - w * scale) / 2, (size - h * scale) / 2);
            canvas.Scale(scale);
            // Clip to the viewBox as a browser does: nothing outside it shows.
            canvas.ClipRect(new SKRect(0, 0, w, h));
            canvas.DrawPicture(picture);
            canvas.Flush();
        }
        // The background is opaque white, so premultiplied RGBA is plain RGBA here.
        var rgba = bitmap.GetPixelSpan();
        var image = new RgbImage(size, size);
        for (int i = 0, j = 0; i < image.Pixels.Length; i += 3, j += 4)
        {
            image.Pixels[i] = rgba[j]; image.Pixels[i + 1] = rgba[j + 1]; image.Pixels[i + 2] = rgba[j + 2];
        }
        return image;
    }

    /// <summary>True when every pixel is pure white (nothing was drawn).</summary>
    public static bool IsBlank(RgbImage image)
    {
        foreach (var b in image.Pixels) if (b != 255) return false;
        return true;
    }
}
