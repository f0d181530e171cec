using SelfCascade.Evaluation;
using SelfCascade.Tests.Support;
using static SelfCascade.Tests.Evaluation.SyntheticImages;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Evaluation;

public sealed class BaseConsistencyTests
{
    public BaseConsistencyTests() => TorchSetup.Ensure();

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void NearestUpThenBoxDownIsIdentity(int factor)
    {
        var baseImg = RandomShapes(new Random(factor), 32);
        var r = BaseConsistency.Measure(UpscaleNearest(baseImg, factor), baseImg);
        // Exact up to float64 rounding of the f×f block mean (1/3, 1/9 are not binary fractions).
        Assert.True(r.Mse < 1e-24, $"MSE {r.Mse}");
        Assert.True(r.Psnr > 200, $"PSNR {r.Psnr}");
        Assert.Equal(1.0, r.Ssim!.Value, 12);
    }

    [Fact]
    public void ErrorGrowsWithNoise()
    {
        var baseImg = RandomShapes(new Random(7), 32);
        var up = UpscaleNearest(baseImg, 2);
        var results = new[] { 0.02, 0.05, 0.1, 0.2 }.Select(s => BaseConsistency.Measure(Noise(up, s, 1), baseImg)).ToList();
        for (int i = 1; i < results.Count; i++)
        {
            Assert.True(results[i].Mse > results[i - 1].Mse, $"MSE {results[i].Mse} should exceed {results[i - 1].Mse}");
            Assert.True(results[i].Psnr < results[i - 1].Psnr);
            Assert.True(results[i].Ssim < results[i - 1].Ssim, $"SSIM {results[i].Ssim} should be below {results[i - 1].Ssim}");
        }
        Assert.True(results[0].Mse > 0);
        // Averaging 2x2 blocks divides the noise variance by 4: MSE ≈ σ²/4 for the light, unclamped case.
        Assert.InRange(results[0].Mse, 0.02 * 0.02 / 4 * 0.7, 0.02 * 0.02 / 4 * 1.3);
    }

    [Fact]
    public void PsnrAndMseFollowTheirFormulas()
    {
        using var a = full(1, 3, 8, 8, 0.5, ScalarType.Float64);
        using var b = full(1, 3, 8, 8, 0.6, ScalarType.Float64);
        double mse = ImageError.Mse(a, b);
        Assert.Equal(0.01, mse, 12);
        Assert.Equal(20.0, ImageError.Psnr(mse), 9);
        Assert.Equal(1.0, ImageError.Ssim(a, a), 12);
        Assert.True(ImageError.Ssim(a, b) < 1.0);
    }

    [Fact]
    public void NonIntegerFactorUsesAntialiasedBilinear()
    {
        // A constant image stays constant under any antialiased resize; a sharp image 1.5x larger stays close.
        var flat = White(48);
        Square(flat, 0, 0, 48, (90, 140, 200), antialias: false);
        Assert.Equal(0.0, BaseConsistency.Measure(flat, Crop32(flat)).Mse, 10);

        var baseImg = Blur(RandomShapes(new Random(3), 32), 1.0);
        using var up = nn.functional.interpolate(ImageTensors.ToUnit(baseImg).to(ScalarType.Float32), [48, 48], mode: InterpolationMode.Bilinear, align_corners: false);
        var r = BaseConsistency.Measure(up.to(ScalarType.Float64), ImageTensors.ToUnit(baseImg));
        Assert.True(r.Mse < 2e-3, $"1.5x round trip MSE {r.Mse}");
        Assert.True(r.Ssim > 0.9, $"1.5x round trip SSIM {r.Ssim}");
    }

    [Fact]
    public void IntegerFactorsAreBlockMeansPerAxis()
    {
        using var x = arange(24, ScalarType.Float64).reshape(1, 1, 4, 6);
        using var y = ImageTensors.ResizeAntialiased(x, 2, 2); // 2×3 blocks
        Assert.Equal(new[] { 4.0, 7.0, 16.0, 19.0 }, y.data<double>().ToArray());
    }

    [Fact]
    public void SignedTensorsAreMeasuredOnTheImageScale()
    {
        var img = RandomShapes(new Random(11), 16);
        using var signed = img.ToTensor();
        using var unit = ImageTensors.SignedToUnit(signed);
        using var direct = ImageTensors.ToUnit(img);
        Assert.True(unit.allclose(direct, 1e-6, 1e-6));
    }

    [Fact]
    public void SummaryAveragesTheSet()
    {
        var baseImg = RandomShapes(new Random(5), 32);
        var summary = BaseConsistency.Evaluate([(UpscaleNearest(baseImg, 2), baseImg), (Noise(UpscaleNearest(baseImg, 2), 0.1, 2), baseImg)]);
        Assert.Equal(summary.Samples[1].Mse / 2, summary.MeanMse, 12);
        Assert.Equal(ImageError.Psnr(summary.MeanMse), summary.PsnrOfMeanMse, 12);
    }

    private static SelfCascade.Imaging.RgbImage Crop32(SelfCascade.Imaging.RgbImage img) => ImageCrops.Crop(img, 0, 0, 32);
}
