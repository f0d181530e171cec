namespace SelfCascade.Evaluation;

/// <summary>A statistic on the whole sample and its bootstrap percentile interval.</summary>
public sealed record Interval(double Estimate, double Low, double High)
{
    public static Interval Undefined { get; } = new(double.NaN, double.NaN, double.NaN);
}

/// <summary>
/// The nonparametric bootstrap (Efron): draw <c>B</c> samples of n indices with replacement from 0..n-1, evaluate
/// the statistic on each, and take the percentile interval, the α/2 and 1-α/2 quantiles of those B values
/// (quantile with linear interpolation between order statistics at position q (B - 1), numpy's default). The
/// estimate is the statistic on the original sample. Deterministic for a seed: the index draws come from
/// <c>System.Random(seed)</c> and do not depend on the statistic, so statistics evaluated with one seed see the same
/// resamples (paired across metrics and across methods with the same prompts).
/// </summary>
public static class Bootstrap
{
    /// <summary>B index resamples of 0..n-1 (each of length n, with replacement).</summary>
    public static int[][] Resamples(int n, int resamples, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(resamples, 1);
        var rng = new Random(seed);
        var result = new int[resamples][];
        for (int b = 0; b < resamples; b++)
        {
            var idx = new int[n];
            for (int i = 0; i < n; i++) idx[i] = rng.Next(n);
            result[b] = idx;
        }
        return result;
    }

    /// <summary>Percentile interval of <paramref name="statistic"/> (a function of the chosen indices) at <paramref name="level"/>.</summary>
    public static Interval Percentile(int n, Func<int[], double> statistic, int resamples = 1000, int seed = 0, double level = 0.95) =>
        Percentile(Enumerable.Range(0, n).ToArray(), Resamples(n, resamples, seed), statistic, level);

    /// <summary>The same over given resamples (reuse them to pair several statistics).</summary>
    public static Interval Percentile(int[] identity, IReadOnlyList<int[]> resamples, Func<int[], double> statistic, double level = 0.95)
    {
        if (level is <= 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(level), level, "a level in (0, 1)");
        double estimate = statistic(identity);
        var values = resamples.Select(statistic).Where(v => !double.IsNaN(v)).Order().ToArray();
        if (values.Length == 0 || double.IsNaN(estimate)) return new Interval(estimate, double.NaN, double.NaN);
        double alpha = 1 - level;
        return new Interval(estimate, Quantile(values, alpha / 2), Quantile(values, 1 - alpha / 2));
    }

    /// <summary>Quantile q of sorted values: linear interpolation at position q (n - 1).</summary>
    public static double Quantile(IReadOnlyList<double> sorted, double q)
    {
        if (sorted.Count == 0) throw new ArgumentException("no values");
        double pos = q * (sorted.Count - 1);
        int lo = (int)Math.Floor(pos), hi = Math.Min(lo + 1, sorted.Count - 1);
        return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
    }

    /// <summary>Mean of <paramref name="values"/> at the chosen indices.</summary>
    public static double MeanAt(IReadOnlyList<double> values, int[] indices)
    {
        double sum = 0;
        foreach (var i in indices) sum += values[i];
        return sum / indices.Length;
    }
}
