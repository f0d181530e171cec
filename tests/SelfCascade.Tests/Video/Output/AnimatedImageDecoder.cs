using SelfCascade.Imaging;
using SkiaSharp;

namespace SelfCascade.Tests.Video.Output;

/// <summary>Decodes every frame of an animated GIF/WebP with Skia's decoders (independent of our writers), with its duration in ms.</summary>
internal static class AnimatedImageDecoder
{
    public static (List<RgbImage> Frames, List<int> DurationsMs) Decode(string path)
    {
        using var codec = SKCodec.Create(path) ?? throw new InvalidDataException($"{path}: Skia cannot read it");
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var frames = new List<RgbImage>();
        var durations = new List<int>();
        int count = Math.Max(1, codec.FrameCount);
        var previous = new List<byte[]>();
        for (int f = 0; f < count; f++)
        {
            using var bmp = new SKBitmap(info);
            var fi = codec.FrameCount > 0 ? codec.FrameInfo[f] : default;
            var options = new SKCodecOptions(f);
            if (codec.FrameCount > 0 && fi.RequiredFrame >= 0)
            {
                // The frame draws over an earlier one: start from that frame's pixels.
                System.Runtime.InteropServices.Marshal.Copy(previous[fi.RequiredFrame], 0, bmp.GetPixels(), previous[fi.RequiredFrame].Length);
                options = new SKCodecOptions(f, fi.RequiredFrame);
            }
            var result = codec.GetPixels(info, bmp.GetPixels(), options);
            if (result != SKCodecResult.Success) throw new InvalidDataException($"{path}: frame {f} decodes as {result}");
            var rgba = new byte[info.BytesSize];
            System.Runtime.InteropServices.Marshal.Copy(bmp.GetPixels(), rgba, 0, rgba.Length);
            previous.Add(rgba);
            var img = new RgbImage(info.Width, info.Height);
            for (int i = 0, j = 0; j < rgba.Length; i += 3, j += 4)
            {
                Assert.Equal(255, rgba[j + 3]);
                img.Pixels[i] = rgba[j]; img.Pixels[i + 1] = rgba[j + 1]; img.Pixels[i + 2] = rgba[j + 2];
            }
            frames.Add(img);
            durations.Add(fi.Duration);
        }
        return (frames, durations);
    }
}
