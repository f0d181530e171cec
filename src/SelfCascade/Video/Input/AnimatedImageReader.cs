using SelfCascade.Imaging;
using SkiaSharp;

namespace SelfCascade.Video.Input;

/// <summary>
/// Reads every frame of an animated GIF or WebP (SkiaSharp's decoders; each frame composed onto the frames it depends
/// on, as a viewer shows it, then alpha composited on white like <see cref="RgbImage.Load"/>). A still image is one
/// frame. Memory is bounded: at most <c>maxFrames</c> frames of at most <see cref="MaxPixelsPerFrame"/> pixels, checked
/// from the header before any frame is decoded, and at most <see cref="MaxTotalPixels"/> in all.
/// </summary>
public static class AnimatedImageReader
{
    /// <summary>File types read as clips (every frame).</summary>
    public static readonly string[] Extensions = [".gif", ".webp"];

    /// <summary>Largest frame accepted (4096 x 4096).</summary>
    public const long MaxPixelsPerFrame = 4096L * 4096;

    /// <summary>Largest clip accepted, all frames together (e.g. 256 frames of 512 x 512).</summary>
    public const long MaxTotalPixels = 1L << 26;

    /// <summary>Frames in the file (1 for a still image), from the header only.</summary>
    public static int FrameCount(string path)
    {
        using var codec = Open(path);
        return Math.Max(1, codec.FrameCount);
    }

    /// <summary>Decodes every frame; throws <see cref="InvalidDataException"/> for unreadable files or files over the limits.</summary>
    public static IReadOnlyList<RgbImage> ReadFrames(string path, int maxFrames = 1024)
    {
        using var codec = Open(path);
        int width = codec.Info.Width, height = codec.Info.Height;
        if (width < 1 || height < 1 || (long)width * height > MaxPixelsPerFrame)
            throw new InvalidDataException($"{path}: {width}x{height} frames are outside 1..{MaxPixelsPerFrame} pixels");
        int count = Math.Max(1, codec.FrameCount);
        if (count > maxFrames) throw new InvalidDataException($"{path}: {count} frames, more than the {maxFrames} allowed");
        if ((long)width * height * count > MaxTotalPixels)
            throw new InvalidDataException($"{path}: {count} frames of {width}x{height} exceed {MaxTotalPixels} pixels in all");
        var infos = codec.FrameInfo;
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        int bytes = width * height * 4;
        var decoded = new byte[count][];
        var frames = new RgbImage[count];
        using var bmp = new SKBitmap(info);
        for (int i = 0; i < count; i++)
        {
            int required = i < infos.Length ? infos[i].RequiredFrame : -1;
            // A frame drawn over an earlier one starts from that frame's pixels; an independent one from transparent.
            if (required >= 0 && required < i) System.Runtime.InteropServices.Marshal.Copy(decoded[required], 0, bmp.GetPixels(), bytes);
            else bmp.Erase(SKColors.Transparent);
            var result = codec.GetPixels(info, bmp.GetPixels(), new SKCodecOptions(i, required >= 0 && required < i ? required : -1));
            if (result is not (SKCodecResult.Success or SKCodecResult.IncompleteInput))
                throw new InvalidDataException($"{path}: frame {i} could not be decoded ({result})");
            var rgba = new byte[bytes];
            System.Runtime.InteropServices.Marshal.Copy(bmp.GetPixels(), rgba, 0, bytes);
            decoded[i] = rgba;
            frames[i] = OnWhite(rgba, width, height);
        }
        return frames;
    }

    private static SKCodec Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        return SKCodec.Create(path) ?? throw new InvalidDataException($"{path}: not a readable image");
    }

    private static RgbImage OnWhite(byte[] rgba, int width, int height)
    {
        var img = new RgbImage(width, height);
        for (int i = 0, j = 0; j < rgba.Length; i += 3, j += 4)
        {
            int a = rgba[j + 3];
            for (int c = 0; c < 3; c++) img.Pixels[i + c] = (byte)((rgba[j + c] * a + 255 * (255 - a) + 127) / 255);
        }
        return img;
    }
}
