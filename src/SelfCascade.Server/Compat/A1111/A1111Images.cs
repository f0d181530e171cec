using SelfCascade.Imaging;
using SkiaSharp;

namespace SelfCascade.Server.Compat.A1111;

/// <summary>
/// Images in A1111's API: base64 strings, optionally as a <c>data:image/...;base64,</c> URL. Decoding is bounded:
/// the encoded size, then the header's dimensions are checked before any pixel is decoded. http(s) URLs, which A1111
/// may fetch, are refused (the server makes no outbound requests).
/// </summary>
public static class A1111Images
{
    public static RgbImage DecodeBase64(string encoded, A1111Limits limits, string what = "image")
    {
        var s = encoded.Trim();
        if (s.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || s.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
            throw new A1111RequestException(422, $"{what}: image URLs are not fetched; send the image as base64");
        if (s.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            int comma = s.IndexOf(',');
            if (comma < 0) throw new A1111RequestException(422, $"{what}: malformed data URL");
            s = s[(comma + 1)..];
        }
        if ((long)s.Length * 3 / 4 > limits.MaxInitImageBytes)
            throw new A1111RequestException(413, $"{what}: the encoded image exceeds {limits.MaxInitImageBytes >> 20} MiB");
        var bytes = new byte[s.Length * 3 / 4 + 3];
        if (!Convert.TryFromBase64String(s, bytes, out int n)) throw new A1111RequestException(422, $"{what}: invalid base64");
        return Decode(bytes.AsSpan(0, n).ToArray(), limits.MaxSide, what);
    }

    /// <summary>PNG/JPEG/WebP/BMP bytes to RGB (alpha over white, as <see cref="RgbImage.Load"/>), at most maxSide per side.</summary>
    public static RgbImage Decode(byte[] data, int maxSide, string what = "image")
    {
        using var skData = SKData.CreateCopy(data);
        using var codec = SKCodec.Create(skData) ?? throw new A1111RequestException(422, $"{what}: not a readable image (PNG, JPEG, WebP or BMP)");
        int w = codec.Info.Width, h = codec.Info.Height;
        if (w < 1 || h < 1 || w > maxSide || h > maxSide)
            throw new A1111RequestException(422, $"{what}: {w}x{h} is outside 1..{maxSide} px per side");
        var info = new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bmp = new SKBitmap(info);
        var result = codec.GetPixels(info, bmp.GetPixels());
        if (result is not (SKCodecResult.Success or SKCodecResult.IncompleteInput))
            throw new A1111RequestException(422, $"{what}: the image could not be decoded ({result})");
        var rgba = new byte[w * h * 4];
        System.Runtime.InteropServices.Marshal.Copy(bmp.GetPixels(), rgba, 0, rgba.Length);
        var img = new RgbImage(w, h);
        for (int i = 0, j = 0; j < rgba.Length; i += 3, j += 4)
        {
            int a = rgba[j + 3];
            for (int c = 0; c < 3; c++) img.Pixels[i + c] = (byte)((rgba[j + c] * a + 255 * (255 - a) + 127) / 255);
        }
        return img;
    }

    /// <summary>A PNG (with its "parameters" text chunk, as A1111 writes with enable_pnginfo) as base64.</summary>
    public static string EncodePngBase64(RgbImage image, string? infotext) =>
        Convert.ToBase64String(image.EncodePng(infotext is null ? null : new Dictionary<string, string> { ["parameters"] = infotext }));
}
