using SkiaSharp;
using static TorchSharp.torch;

namespace SelfCascade.Imaging;

/// <summary>An 8-bit RGB image held in managed memory (row-major, 3 bytes a pixel), with PNG input and output.</summary>
public sealed class RgbImage
{
    public int Width { get; }
    public int Height { get; }
    /// <summary>Pixels as R,G,B bytes, row by row.</summary>
    public byte[] Pixels { get; }

    public RgbImage(int width, int height, byte[]? pixels = null)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"image size {width}x{height} is not positive");
        Width = width; Height = height;
        Pixels = pixels ?? new byte[checked(width * height * 3)];
        if (Pixels.Length != width * height * 3) throw new ArgumentException($"pixel buffer holds {Pixels.Length} bytes, {width}x{height} RGB needs {width * height * 3}");
    }

    /// <summary>
    /// From a decoder output in [-1, 1], shape (3, H, W) or (1, 3, H, W), converted as diffusers' image processor
    /// does: <c>x/2 + 0.5</c>, clamp to [0, 1], then <c>round(x * 255)</c> (numpy_to_pil: <c>(x * 255).round()</c>).
    /// </summary>
    public static RgbImage FromDecoderOutput(Tensor image)
    {
        using var scope = NewDisposeScope();
        var t = image.dim() == 4 ? image[0] : image;
        if (t.dim() != 3 || t.shape[0] != 3) throw new ArgumentException($"expected a (3,H,W) image, got [{string.Join(",", image.shape)}]");
        var unit = (t.detach().to(ScalarType.Float32).cpu() / 2 + 0.5).clamp(0, 1);
        return FromUnitTensor(unit);
    }

    /// <summary>From values in [0, 1], shape (3, H, W): <c>round(x * 255)</c>.</summary>
    public static RgbImage FromUnitTensor(Tensor unit)
    {
        using var scope = NewDisposeScope();
        var hwc = (unit.to(ScalarType.Float32).cpu().clamp(0, 1) * 255).round().to(ScalarType.Byte).permute(1, 2, 0).contiguous();
        var img = new RgbImage((int)hwc.shape[1], (int)hwc.shape[0]);
        hwc.bytes.CopyTo(img.Pixels);
        return img;
    }

    /// <summary>As a (1, 3, H, W) float tensor in [-1, 1] (the VAE encoder's input range).</summary>
    public Tensor ToTensor(Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        using var scope = NewDisposeScope();
        var raw = tensor(Pixels, [Height, Width, 3]);
        var t = (raw.permute(2, 0, 1).unsqueeze(0).to(ScalarType.Float32) / 127.5 - 1).to(dtype);
        if (device != null) t = t.to(device);
        return t.MoveToOuterDisposeScope();
    }

    public byte this[int x, int y, int c] => Pixels[(y * Width + x) * 3 + c];

    /// <summary>Encodes as PNG, with optional tEXt metadata (key/value) after the header.</summary>
    public byte[] EncodePng(IReadOnlyDictionary<string, string>? text = null)
    {
        var info = new SKImageInfo(Width, Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bmp = new SKBitmap(info);
        var rgba = new byte[Width * Height * 4];
        for (int i = 0, j = 0; i < Pixels.Length; i += 3, j += 4)
        {
            rgba[j] = Pixels[i]; rgba[j + 1] = Pixels[i + 1]; rgba[j + 2] = Pixels[i + 2]; rgba[j + 3] = 255;
        }
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bmp.GetPixels(), rgba.Length);
        using var data = bmp.Encode(SKEncodedImageFormat.Png, 100)
            ?? throw new InvalidOperationException("PNG encoding failed");
        var png = data.ToArray();
        return text is { Count: > 0 } ? PngText.Insert(png, text) : png;
    }

    /// <summary>Writes a PNG atomically (<see cref="IO.AtomicFile"/>): a temporary file renamed into place, so no partial file is ever left.</summary>
    public void SavePng(string path, IReadOnlyDictionary<string, string>? text = null) =>
        IO.AtomicFile.WriteAllBytes(path, EncodePng(text));

    /// <summary>Decodes PNG/JPEG/WebP/BMP into RGB (alpha composited on white).</summary>
    public static RgbImage Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: image not found", path);
        using var codec = SKCodec.Create(path) ?? throw new InvalidDataException($"{path}: not a readable image");
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bmp = new SKBitmap(info);
        var result = codec.GetPixels(info, bmp.GetPixels());
        if (result is not (SKCodecResult.Success or SKCodecResult.IncompleteInput))
            throw new InvalidDataException($"{path}: image could not be decoded ({result})");
        var rgba = new byte[info.Width * info.Height * 4];
        System.Runtime.InteropServices.Marshal.Copy(bmp.GetPixels(), rgba, 0, rgba.Length);
        var img = new RgbImage(info.Width, info.Height);
        for (int i = 0, j = 0; j < rgba.Length; i += 3, j += 4)
        {
            int a = rgba[j + 3];
            for (int c = 0; c < 3; c++) img.Pixels[i + c] = (byte)((rgba[j + c] * a + 255 * (255 - a) + 127) / 255);
        }
        return img;
    }

    /// <summary>Reads the tEXt metadata of a PNG file.</summary>
    public static IReadOnlyDictionary<string, string> ReadPngText(string path) => PngText.Read(File.ReadAllBytes(path));
}
