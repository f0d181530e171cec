using System.Globalization;
using SelfCascade.Cascade;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using SelfCascade.Server.Jobs;
using SkiaSharp;

namespace SelfCascade.Server.Api;

/// <summary>Parsing shared by the endpoint groups; every failure is a <see cref="JobRequestException"/> (HTTP 400).</summary>
public static class WireParsing
{
    public static readonly string[] Methods = ["direct", "attn-scale", "upscale-only", "self-cascade"];

    public static GenerationMethod? ParseMethod(string? name) => name switch
    {
        null or "" => null,
        "direct" => GenerationMethod.Direct,
        "attn-scale" => GenerationMethod.AttnScale,
        "upscale-only" => GenerationMethod.UpscaleOnly,
        "self-cascade" => GenerationMethod.SelfCascade,
        _ => throw new JobRequestException($"unknown method '{Short(name)}'; valid: {string.Join(", ", Methods)}"),
    };

    /// <summary>"WIDTHxHEIGHT".</summary>
    public static PixelSize ParseSize(string text, string what)
    {
        var parts = text.Split('x', 'X');
        if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var w)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var h) || w <= 0 || h <= 0)
            throw new JobRequestException($"{what} '{Short(text)}' is not WIDTHxHEIGHT");
        return new PixelSize(w, h);
    }

    public static PivotResizeMode ParsePivotMode(string? s) => s switch
    {
        null or "" or "bilinear" => PivotResizeMode.Bilinear,
        "bicubic" => PivotResizeMode.Bicubic,
        _ => throw new JobRequestException($"pivot_mode '{Short(s)}' must be bilinear or bicubic"),
    };

    public static VaeTiling ParseVaeTiling(string? s) => s switch
    {
        null or "" or "auto" => VaeTiling.Auto,
        "on" => VaeTiling.On,
        "off" => VaeTiling.Off,
        _ => throw new JobRequestException($"vae_tiling '{Short(s)}' must be auto, on or off"),
    };

    /// <summary>
    /// An image from base64 (optionally a data: URL), PNG/JPEG/WebP/BMP, alpha composited on white as the CLI's
    /// loader does. The encoded size is bounded by the request body limit; the pixel count is checked from the header
    /// before any pixel is decoded, so a small file cannot claim a huge image.
    /// </summary>
    public static RgbImage DecodeImage(string? base64, long maxPixels, string what = "image")
    {
        if (string.IsNullOrWhiteSpace(base64)) throw new JobRequestException($"{what} is missing");
        var text = base64.Trim();
        if (text.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            int comma = text.IndexOf(',');
            if (comma < 0 || !text[..comma].EndsWith(";base64", StringComparison.OrdinalIgnoreCase))
                throw new JobRequestException($"{what}: a data URL must be base64");
            text = text[(comma + 1)..];
        }
        byte[] bytes;
        try { bytes = Convert.FromBase64String(text); }
        catch (FormatException) { throw new JobRequestException($"{what} is not valid base64"); }
        return DecodeImage(bytes, maxPixels, what);
    }

    public static RgbImage DecodeImage(byte[] bytes, long maxPixels, string what = "image")
    {
        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data) ?? throw new JobRequestException($"{what} is not a PNG, JPEG, WebP or BMP image");
        int w = codec.Info.Width, h = codec.Info.Height;
        if (w <= 0 || h <= 0) throw new JobRequestException($"{what} has no pixels");
        if ((long)w * h > maxPixels) throw new JobRequestException($"{what} is {w}x{h}, more than the {maxPixels} pixels allowed");
        var info = new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bmp = new SKBitmap(info);
        var result = codec.GetPixels(info, bmp.GetPixels());
        if (result is not (SKCodecResult.Success or SKCodecResult.IncompleteInput))
            throw new JobRequestException($"{what} could not be decoded ({result})");
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

    /// <summary>Per-stage overrides from the three lists (as --stage-steps/--stage-strength/--stage-guidance).</summary>
    public static Dictionary<int, StageSettings> StageOverrides(int[]? steps, double[]? strength, double[]? guidance)
    {
        if ((steps?.Length ?? 0) > 16 || (strength?.Length ?? 0) > 16 || (guidance?.Length ?? 0) > 16)
            throw new JobRequestException("at most 16 per-stage values");
        var d = new Dictionary<int, StageSettings>();
        void Merge(int i, StageSettings s)
        {
            var old = d.GetValueOrDefault(i) ?? new StageSettings();
            d[i] = new StageSettings(s.Steps ?? old.Steps, s.Strength ?? old.Strength, s.GuidanceScale ?? old.GuidanceScale);
        }
        for (int i = 0; i < (steps?.Length ?? 0); i++) Merge(i, new StageSettings(Steps: steps![i]));
        for (int i = 0; i < (strength?.Length ?? 0); i++) Merge(i + 1, new StageSettings(Strength: strength![i]));
        for (int i = 0; i < (guidance?.Length ?? 0); i++) Merge(i, new StageSettings(GuidanceScale: guidance![i]));
        return d;
    }

    /// <summary>A random non-negative seed (for requests that leave it out or send -1).</summary>
    public static long RandomSeed() => Random.Shared.NextInt64(0, uint.MaxValue);

    private static string Short(string s) => s.Length <= 40 ? s : s[..40] + "...";
}
