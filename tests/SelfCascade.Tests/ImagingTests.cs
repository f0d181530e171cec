using SelfCascade.Imaging;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests;

public sealed class ImagingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-img-").FullName;
    public ImagingTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void DecoderOutputIsConvertedAsDiffusersDoes()
    {
        // round(clamp(x/2+0.5, 0, 1) * 255): -1 -> 0, 1 -> 255, 0 -> 127.5 -> 128 (half to even), 2 -> 255, -3 -> 0, 0.5 -> 191
        using var x = tensor(new float[] { -1, 1, 0, 2, -3, 0.5f }).reshape(1, 3, 1, 2);
        var img = RgbImage.FromDecoderOutput(x);
        Assert.Equal(2, img.Width);
        Assert.Equal(1, img.Height);
        // channels: R = [-1, 1], G = [0, 2], B = [-3, 0.5]
        Assert.Equal(new byte[] { 0, 128, 0 }, new[] { img[0, 0, 0], img[0, 0, 1], img[0, 0, 2] });
        Assert.Equal(new byte[] { 255, 255, 191 }, new[] { img[1, 0, 0], img[1, 0, 1], img[1, 0, 2] });
    }

    [Fact]
    public void PngRoundTripKeepsPixelsAndText()
    {
        var img = new RgbImage(5, 3);
        for (int i = 0; i < img.Pixels.Length; i++) img.Pixels[i] = (byte)(i * 17);
        var path = Path.Combine(_dir, "a.png");
        img.SavePng(path, new Dictionary<string, string> { ["prompt"] = "a red circle", ["seed"] = "42", ["note"] = "café ☕" });
        var back = RgbImage.Load(path);
        Assert.Equal(img.Pixels, back.Pixels);
        var text = RgbImage.ReadPngText(path);
        Assert.Equal("a red circle", text["prompt"]);
        Assert.Equal("42", text["seed"]);
        Assert.Equal("café ☕", text["note"]);
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp-*"));
    }

    [Fact]
    public void ToTensorIsTheInverseRange()
    {
        var img = new RgbImage(2, 1, [0, 255, 128, 64, 32, 16]);
        using var t = img.ToTensor();
        Assert.Equal(new long[] { 1, 3, 1, 2 }, t.shape);
        Assert.Equal(-1f, t[0, 0, 0, 0].item<float>());
        Assert.Equal(1f, t[0, 1, 0, 0].item<float>());
        var back = RgbImage.FromDecoderOutput(t);
        Assert.Equal(img.Pixels, back.Pixels);
    }

    [Fact]
    public void UnreadableImagesAreClearErrors()
    {
        var p = Path.Combine(_dir, "x.png");
        File.WriteAllText(p, "not an image");
        Assert.Throws<InvalidDataException>(() => RgbImage.Load(p));
        Assert.Throws<FileNotFoundException>(() => RgbImage.Load(Path.Combine(_dir, "none.png")));
    }
}
