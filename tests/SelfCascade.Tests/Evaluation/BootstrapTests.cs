using SelfCascade.Evaluation;

namespace SelfCascade.Tests.Evaluation;

public sealed class BootstrapTests
{
    /// <summary>
    /// Known case: ten 0/1 values with five ones. A resample's mean is Binomial(10, 0.5) / 10, whose CDF is
    /// 0.0107 at 1 and 0.0547 at 2, 0.9453 at 7 and 0.9893 at 8: the 2.5 % and 97.5 % quantiles fall on 2 and 8,
    /// so the 95 % percentile interval of the mean is [0.2, 0.8] (with 4000 resamples the empirical CDF is within
    /// ~0.3 % of the true one, far from the next mass points).
    /// </summary>
    [Fact]
    public void MeanOfHalfOnesHasTheBinomialInterval()
    {
        double[] values = [1, 0, 1, 0, 1, 0, 1, 0, 1, 0];
        var ci = Bootstrap.Percentile(values.Length, idx => Bootstrap.MeanAt(values, idx), resamples: 4000, seed: 7);
        Assert.Equal(0.5, ci.Estimate, 12);
        Assert.Equal(0.2, ci.Low, 12);
        Assert.Equal(0.8, ci.High, 12);
        // At 80 %: the 10 % and 90 % quantiles (CDF 0.0547 at 2, 0.1719 at 3; 0.8281 at 6, 0.9453 at 7) fall on 3 and 7.
        var ci80 = Bootstrap.Percentile(values.Length, idx => Bootstrap.MeanAt(values, idx), resamples: 4000, seed: 7, level: 0.8);
        Assert.Equal(0.3, ci80.Low, 12);
        Assert.Equal(0.7, ci80.High, 12);
    }

    [Fact]
    public void SameSeedSameIntervalOtherSeedOtherDraws()
    {
        var rng = new Random(3);
        var values = Enumerable.Range(0, 50).Select(_ => rng.NextDouble()).ToArray();
        double Mean(int[] idx) => Bootstrap.MeanAt(values, idx);
        var a = Bootstrap.Percentile(values.Length, Mean, 500, seed: 1);
        var b = Bootstrap.Percentile(values.Length, Mean, 500, seed: 1);
        var c = Bootstrap.Percentile(values.Length, Mean, 500, seed: 2);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.True(a.Low < a.Estimate && a.Estimate < a.High);
        // Normal theory for the mean of U(0,1) draws: half-width ≈ 1.96 · s / √n; the percentile interval agrees within 20 %.
        double mean = values.Average(), s = Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Length - 1));
        double half = 1.96 * s / Math.Sqrt(values.Length);
        Assert.InRange((a.High - a.Low) / 2, 0.8 * half, 1.2 * half);
    }

    [Fact]
    public void QuantileInterpolatesLinearlyAndConstantDataHasZeroWidth()
    {
        double[] sorted = [1, 2, 3, 4];
        Assert.Equal(2.5, Bootstrap.Quantile(sorted, 0.5), 12); // position 1.5
        Assert.Equal(1.075, Bootstrap.Quantile(sorted, 0.025), 12); // position 0.075
        Assert.Equal(4, Bootstrap.Quantile(sorted, 1), 12);
        var ci = Bootstrap.Percentile(20, idx => 3.0, 100, 0);
        Assert.Equal(new Interval(3, 3, 3), ci);
        var resamples = Bootstrap.Resamples(5, 3, 0);
        Assert.All(resamples, r => Assert.Equal(5, r.Length));
        Assert.All(resamples.SelectMany(r => r), i => Assert.InRange(i, 0, 4));
    }
}
