using SelfCascade.Evaluation;
using SelfCascade.Tests.Support;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Evaluation;

public sealed class KernelInceptionDistanceTests
{
    public KernelInceptionDistanceTests() => TorchSetup.Ensure();

    [Fact]
    public void UnbiasedMmdMatchesExplicitSums()
    {
        using var g = new Generator(1);
        using var x = randn(5, 3, ScalarType.Float64, generator: g);
        using var y = randn(5, 3, ScalarType.Float64, generator: g) + 0.5;
        var xs = x.data<double>().ToArray(); var ys = y.data<double>().ToArray();
        double K(double[] p, int i, double[] q, int j) => Math.Pow((p[i * 3] * q[j * 3] + p[i * 3 + 1] * q[j * 3 + 1] + p[i * 3 + 2] * q[j * 3 + 2]) / 3 + 1, 3);
        double xx = 0, yy = 0, xy = 0;
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 5; j++)
            {
                if (i != j) { xx += K(xs, i, xs, j); yy += K(ys, i, ys, j); }
                xy += K(xs, i, ys, j);
            }
        double expected = (xx + yy) / 20 - 2 * xy / 25;
        Assert.Equal(expected, KernelInceptionDistance.UnbiasedMmd2(x, y), 10);
    }

    [Fact]
    public void NearZeroForIdenticalSetsAndPositiveForDifferentOnes()
    {
        using var g = new Generator(2);
        using var x = randn(2000, 16, ScalarType.Float64, generator: g);
        using var twin = randn(2000, 16, ScalarType.Float64, generator: g); // same distribution, other samples
        using var shifted = x + 0.3;
        var same = KernelInceptionDistance.Compute(x, x, subsetSize: 100, subsets: 50);
        var independent = KernelInceptionDistance.Compute(x, twin, subsetSize: 100, subsets: 50);
        var different = KernelInceptionDistance.Compute(x, shifted, subsetSize: 100, subsets: 50);
        Assert.True(different.Mean > 0 && different.Mean > 3 * different.Std, $"KID(X, X+0.3) = {different.Mean} ± {different.Std}");
        // Independent subsets of one set share ~m²/N vectors, which biases the estimate below 0 by ≈ 2(E k(x,x) - E k(x,y))/N.
        Assert.True(Math.Abs(same.Mean) < 0.1 * different.Mean, $"KID(X, X) = {same.Mean}, KID(X, X+0.3) = {different.Mean}");
        Assert.True(Math.Abs(independent.Mean) < 0.1 * different.Mean, $"KID(X, X') = {independent.Mean}");
        Assert.True(Math.Abs(independent.Mean) < 3 * independent.Std, $"KID(X, X') = {independent.Mean} ± {independent.Std}");
        // Seeded: the same subsets give the same numbers.
        Assert.Equal(same, KernelInceptionDistance.Compute(x, x, subsetSize: 100, subsets: 50));
        Assert.NotEqual(same, KernelInceptionDistance.Compute(x, x, subsetSize: 100, subsets: 50, seed: 1));
        Assert.Equal(100, same.SubsetSize);
    }

    [Fact]
    public void GrowsWithTheShift()
    {
        using var g = new Generator(3);
        using var x = randn(300, 8, ScalarType.Float64, generator: g);
        double prev = double.NegativeInfinity;
        foreach (var s in new[] { 0.1, 0.3, 0.6, 1.0 })
        {
            using var y = x + s;
            var kid = KernelInceptionDistance.Compute(x, y, subsetSize: 100, subsets: 20, seed: 1);
            Assert.True(kid.Mean > prev, $"KID at shift {s} = {kid.Mean}, previous {prev}");
            prev = kid.Mean;
        }
    }

    [Fact]
    public void SubsetSizeIsCappedAndSizesChecked()
    {
        using var x = randn(10, 4, ScalarType.Float64);
        using var y = randn(7, 4, ScalarType.Float64);
        Assert.Equal(7, KernelInceptionDistance.Compute(x, y, subsetSize: 1000, subsets: 2).SubsetSize);
        using var z = randn(7, 5, ScalarType.Float64);
        Assert.Throws<ArgumentException>(() => KernelInceptionDistance.Compute(x, z));
    }
}
