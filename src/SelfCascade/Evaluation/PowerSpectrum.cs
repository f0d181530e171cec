using SelfCascade.Imaging;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Evaluation;

/// <summary>Distances between two mean log10 radial spectra (generated vs real), in decades.</summary>
/// <param name="AllBins">Mean over all bins of <c>|S_gen - S_real|</c>.</param>
/// <param name="HighFrequency">Mean of <c>|S_gen - S_real|</c> over the bins whose centre radius is at least half
/// the Nyquist frequency (the detail band).</param>
/// <param name="HighFrequencySigned">Mean of <c>S_gen - S_real</c> over the same bins: negative = missing detail
/// (blur), positive = extra high-frequency energy (noise, artefacts).</param>
public sealed record SpectrumDistance(double AllBins, double HighFrequency, double HighFrequencySigned);

/// <summary>
/// Detail measure: the radially averaged power spectrum of the grayscale image.
/// <list type="number">
/// <item>Y = Rec. 601 luma in [0, 1], minus its mean (the DC term carries only brightness).</item>
/// <item><c>P(u, v) = |FFT2(Y)(u, v)|² / (H W)</c> (by Parseval the mean of P over frequencies is the pixel
/// variance, so images of different sizes share a scale).</item>
/// <item>Radius normalised per axis to the Nyquist frequency, <c>ρ = sqrt((2 f_x)² + (2 f_y)²)</c> with f in
/// cycles/pixel, so ρ = 1 at Nyquist; frequencies with ρ ≥ 1 (the corners) are dropped.</item>
/// <item>Bin b holds <c>b/B ≤ ρ &lt; (b+1)/B</c>; <c>S_b = log10(mean P in bin b + 1e-12)</c>.</item>
/// </list>
/// A set's spectrum is the mean of its images' log spectra. With B ≤ min(H, W)/2 (the default) no bin is empty.
/// </summary>
public static class PowerSpectrum
{
    private const double Floor = 1e-12;

    public static int DefaultBins(int width, int height) => Math.Max(1, Math.Min(width, height) / 2);

    /// <summary>Log10 radial spectrum of one image (B = bins or <see cref="DefaultBins"/>).</summary>
    public static double[] Radial(RgbImage image, int? bins = null)
    {
        using var scope = NewDisposeScope();
        var gray = ImageTensors.Luma(ImageTensors.ToUnit(image))[0];
        return Radial(gray, bins ?? DefaultBins(image.Width, image.Height));
    }

    /// <summary>Log10 radial spectrum of an (H, W) grayscale tensor.</summary>
    public static double[] Radial(Tensor gray, int bins)
    {
        if (gray.dim() != 2) throw new ArgumentException($"expected an (H, W) grayscale image, got [{string.Join(",", gray.shape)}]");
        if (bins < 1) throw new ArgumentOutOfRangeException(nameof(bins), bins, "at least one bin");
        using var scope = NewDisposeScope();
        long h = gray.shape[0], w = gray.shape[1];
        var y = gray.to(ScalarType.Float64);
        y = y - y.mean();
        var power = fft.fft2(y).abs().square() / (double)(h * w);
        var bin = RadialBinIndex(h, w, bins);
        var keep = bin.lt(bins);
        using var one = 1.0.ToScalar();
        var sums = zeros(bins, ScalarType.Float64).index_add(0, bin.masked_select(keep), power.masked_select(keep), one);
        var counts = zeros(bins, ScalarType.Float64).index_add(0, bin.masked_select(keep), ones_like(power).masked_select(keep), one);
        if (counts.eq(0).any().item<bool>())
            throw new ArgumentException($"{bins} bins leave some empty for a {w}x{h} image; use at most {DefaultBins((int)w, (int)h)}");
        return (sums / counts + Floor).log10().data<double>().ToArray();
    }

    /// <summary>Mean of the images' log10 radial spectra; all images must give the same bin count.</summary>
    public static double[] MeanRadial(IEnumerable<RgbImage> images, int? bins = null)
    {
        double[]? total = null;
        int count = 0;
        foreach (var img in images)
        {
            var s = Radial(img, bins);
            total ??= new double[s.Length];
            if (s.Length != total.Length) throw new ArgumentException("images give different bin counts: pass bins explicitly");
            for (int i = 0; i < s.Length; i++) total[i] += s[i];
            count++;
        }
        if (total is null) throw new ArgumentException("no images");
        return total.Select(v => v / count).ToArray();
    }

    /// <summary>Distances between two mean spectra of the same bin count (see <see cref="SpectrumDistance"/>).</summary>
    public static SpectrumDistance Distance(IReadOnlyList<double> generated, IReadOnlyList<double> real)
    {
        if (generated.Count != real.Count || generated.Count == 0) throw new ArgumentException($"spectra differ in length: {generated.Count} vs {real.Count}");
        int bins = real.Count;
        var diff = Enumerable.Range(0, bins).Select(i => generated[i] - real[i]).ToArray();
        var high = Enumerable.Range(0, bins).Where(i => (i + 0.5) / bins >= 0.5).ToArray();
        return new SpectrumDistance(diff.Average(Math.Abs), high.Average(i => Math.Abs(diff[i])), high.Average(i => diff[i]));
    }

    /// <summary>Distance between the mean spectra of a generated and a real set.</summary>
    public static SpectrumDistance Distance(IEnumerable<RgbImage> generated, IEnumerable<RgbImage> real, int? bins = null) =>
        Distance(MeanRadial(generated, bins), MeanRadial(real, bins));

    /// <summary>
    /// Bin of every FFT frequency, (H, W) int64: <c>floor(ρ B + 1e-9)</c> with f = fftfreq (k/n, k ≥ n/2 negative);
    /// the epsilon keeps the on-axis frequencies <c>ρ = k/(n/2)</c> in bin k despite rounding.
    /// </summary>
    internal static Tensor RadialBinIndex(long h, long w, int bins)
    {
        using var scope = NewDisposeScope();
        var fy = Frequencies(h).unsqueeze(1);
        var fx = Frequencies(w).unsqueeze(0);
        var rho = ((2 * fy).square() + (2 * fx).square()).sqrt();
        return (rho * bins + 1e-9).floor().to(ScalarType.Int64).MoveToOuterDisposeScope();
    }

    /// <summary><c>numpy.fft.fftfreq(n)</c>: 0, 1/n, …, then negative frequencies.</summary>
    private static Tensor Frequencies(long n)
    {
        using var scope = NewDisposeScope();
        var k = arange(n, ScalarType.Float64);
        return (where(k.ge(n - n / 2), k - n, k) / (double)n).MoveToOuterDisposeScope();
    }
}
