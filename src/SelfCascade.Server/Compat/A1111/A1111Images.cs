using SelfCascade.Imaging;
using SelfCascade.Server.Api;
using SelfCascade.Server.Jobs;

namespace SelfCascade.Server.Compat.A1111;

/// <summary>
/// Images in A1111's API: base64 strings, optionally as a <c>data:image/...;base64,</c> URL. Decoding is bounded:
/// the encoded size, then the header's pixel count is checked before any pixel is decoded. http(s) URLs, which A1111
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

    /// <summary>PNG/JPEG/WebP/BMP bytes to RGB with the native API's bounded decoder (dimensions checked before decoding).</summary>
    public static RgbImage Decode(byte[] data, int maxSide, string what = "image")
    {
        RgbImage img;
        try { img = WireParsing.DecodeImage(data, (long)maxSide * maxSide, what); }
        catch (JobRequestException e) { throw new A1111RequestException(422, e.Message); }
        if (img.Width > maxSide || img.Height > maxSide)
            throw new A1111RequestException(422, $"{what}: {img.Width}x{img.Height} exceeds {maxSide} px per side");
        return img;
    }

    /// <summary>
    /// A PNG file's bytes with its "parameters" text chunk replaced by A1111's infotext (what A1111 writes with
    /// enable_pnginfo); the other chunks (our generation metadata) are kept.
    /// </summary>
    public static byte[] WithInfotext(byte[] png, string infotext) =>
        PngText.Insert(WithoutTextChunk(png, "parameters"), new Dictionary<string, string> { ["parameters"] = infotext });

    /// <summary>The PNG without its tEXt chunks of keyword <paramref name="key"/>.</summary>
    internal static byte[] WithoutTextChunk(byte[] png, string key)
    {
        var keyword = System.Text.Encoding.Latin1.GetBytes(key + "\0");
        using var ms = new MemoryStream(png.Length);
        ms.Write(png, 0, 8);
        int pos = 8;
        while (pos + 12 <= png.Length)
        {
            int len = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(pos));
            if (len < 0 || pos + 12L + len > png.Length) break;
            var type = png.AsSpan(pos + 4, 4);
            bool drop = type.SequenceEqual("tEXt"u8) && png.AsSpan(pos + 8, len).StartsWith(keyword);
            if (!drop) ms.Write(png, pos, 12 + len);
            pos += 12 + len;
        }
        return ms.ToArray();
    }
}
