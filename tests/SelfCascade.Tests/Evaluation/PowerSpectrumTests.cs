using SelfCascade.Evaluation;
using SelfCascade.Tests.Support;
using static SelfCascade.Tests.Evaluation.SyntheticImages;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Evaluation;

public sealed class PowerSpectrumTests
{
    public PowerSpectrumTests() => TorchSetup.Ensure();

    [Theory]
    [InlineData(3)]
    [InlineData(10)]
    [InlineData(25)]
    public void ACosineLandsInItsRadialBin(int k)
    {
        const int n = 64;
        using var x = arange(n, ScalarType.Float64);
        using var row = (x * (2 * Math.PI * k / n)).cos();
        using var img = row.unsqueeze(0).expand(n, n).contiguous();
        var s = PowerSpectrum.Radial(img, n / 2);
        Assert.Equal(k, Array.IndexOf(s, s.Max()));
        Assert.All(s.Where((_, i) => i != k), v => Assert.True(v < s[k] - 6, $"leak {v} vs peak {s[k]}"));
    }

    [Fact]
    public void MeanPowerEqualsPixelVariance()
    {
        // Parseval: mean over all frequencies of |F|²/(HW) = variance; with every frequency inside one bin (B = 1 takes
        // ρ < 1 only), check on an image whose energy sits well inside the Nyquist circle.
        var img = Blur(RandomShapes(new Random(1), 64), 2.0);
        using var gray = ImageTensors.Luma(ImageTensors.ToUnit(img))[0];
        double variance = gray.var(unbiased: false).item<double>();
        double bin0 = Math.Pow(10, PowerSpectrum.Radial(gray, 1)[0]);
        double insideFraction = Math.PI / 4; // share of the frequency square inside ρ < 1
        Assert.InRange(bin0 * insideFraction, variance * 0.97, variance * 1.03);
    }

    [Fact]
    public void BlurRemovesHighFrequencyEnergyAndTheDistanceGrowsWithBlur()
    {
        var sharp = RandomSet(seed: 4, count: 24, size: 64);
        var reference = PowerSpectrum.MeanRadial(sharp);
        double prevHigh = 0, prevAll = 0;
        foreach (var sigma in new[] { 0.5, 1.0, 2.0 })
        {
            var blurred = sharp.Select(i => Blur(i, sigma)).ToList();
            var d = PowerSpectrum.Distance(PowerSpectrum.MeanRadial(blurred), reference);
            Assert.True(d.HighFrequencySigned < 0, $"σ={sigma}: blurred high band should lose energy, got {d.HighFrequencySigned}");
            Assert.True(d.HighFrequency > prevHigh, $"σ={sigma}: high-band distance {d.HighFrequency} should exceed {prevHigh}");
            Assert.True(d.AllBins > prevAll);
            Assert.True(d.HighFrequency > d.AllBins, "blur acts mostly on the high band");
            prevHigh = d.HighFrequency; prevAll = d.AllBins;
        }
        Assert.Equal(0.0, PowerSpectrum.Distance(sharp, sharp).AllBins);
    }

    [Fact]
    public void NoiseAddsHighFrequencyEnergy()
    {
        var sharp = RandomSet(seed: 5, count: 12, size: 64);
        var noisy = sharp.Select((img, i) => Noise(img, 0.05, i)).ToList();
        var d = PowerSpectrum.Distance(noisy, sharp);
        Assert.True(d.HighFrequencySigned > 0.1, $"{d.HighFrequencySigned}");
    }

    [Fact]
    public void DefaultBinsAreNeverEmptyAndTooManyAreRejected()
    {
        foreach (var (w, h) in new[] { (32, 32), (64, 48), (17, 33) })
        {
            var img = White(w, h);
            Circle(img, w / 2.0, h / 2.0, Math.Min(w, h) / 3.0, (200, 40, 40));
            Assert.Equal(Math.Min(w, h) / 2, PowerSpectrum.Radial(img).Length);
        }
        using var gray = zeros(16, 16, ScalarType.Float64);
        Assert.Throws<ArgumentException>(() => PowerSpectrum.Radial(gray, 40));
    }
}
