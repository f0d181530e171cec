using SelfCascade.Evaluation;
using SelfCascade.Tests.Support;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Evaluation;

public sealed class FrechetDistanceTests
{
    public FrechetDistanceTests() => TorchSetup.Ensure();

    private static Tensor RandomFeatures(int n, int d, int seed, double shift = 0, double scale = 1)
    {
        using var g = new Generator((ulong)seed);
        using var mix = randn(d, d, ScalarType.Float64, generator: g) / Math.Sqrt(d);
        return (randn(n, d, ScalarType.Float64, generator: g).matmul(mix) * scale + shift);
    }

    [Theory]
    [InlineData(500, 32)]
    [InlineData(40, 128)] // N < D: singular covariance
    public void DistanceOfASetWithItselfIsZero(int n, int d)
    {
        using var f = RandomFeatures(n, d, 1);
        double fd = FrechetDistance.Compute(f, f);
        Assert.True(fd < 1e-6, $"FD(X, X) = {fd}");
    }

    [Fact]
    public void MatchesTheClosedFormForDiagonalGaussians()
    {
        // FD = ‖μ1-μ2‖² + Σ (sqrt(a_i) - sqrt(b_i))²
        double[] mu1 = [0.5, -1, 2, 0], mu2 = [1.5, 1, 2, -0.25], a = [1, 4, 0.25, 2], b = [9, 1, 0.25, 0.5];
        double expected = mu1.Zip(mu2, (x, y) => (x - y) * (x - y)).Sum() + a.Zip(b, (x, y) => Math.Pow(Math.Sqrt(x) - Math.Sqrt(y), 2)).Sum();
        using var m1 = tensor(mu1); using var m2 = tensor(mu2);
        using var s1 = diag(tensor(a)); using var s2 = diag(tensor(b));
        Assert.Equal(expected, FrechetDistance.Compute(m1, s1, m2, s2), 10);

        // The same covariances in a rotated basis (they still commute): the distance is rotation-invariant.
        using var g = new Generator(3);
        var (q, _) = linalg.qr(randn(4, 4, ScalarType.Float64, generator: g));
        using var r1 = q.matmul(s1).matmul(q.t()); using var r2 = q.matmul(s2).matmul(q.t());
        Assert.Equal(expected, FrechetDistance.Compute(q.matmul(m1), r1, q.matmul(m2), r2), 9);
    }

    [Fact]
    public void MatchesTheClosedFormForNonCommuting2x2Covariances()
    {
        // For 2x2 PSD products, Tr sqrt(S1 S2) = sqrt(tr(S1 S2) + 2 sqrt(det(S1 S2))).
        using var s1 = tensor(new double[] { 2.0, 0.6, 0.6, 1.0 }).reshape(2, 2);
        using var s2 = tensor(new double[] { 0.5, -0.3, -0.3, 3.0 }).reshape(2, 2);
        using var p = s1.matmul(s2);
        double trSqrt = Math.Sqrt(p.trace().item<double>() + 2 * Math.Sqrt(linalg.det(p).item<double>()));
        Assert.Equal(trSqrt, FrechetDistance.TraceSqrtProduct(s1, s2), 12);
        using var m1 = tensor(new double[] { 1, 2 }); using var m2 = tensor(new double[] { 0, 0 });
        double expected = 5 + 3.0 + 3.5 - 2 * trSqrt;
        Assert.Equal(expected, FrechetDistance.Compute(m1, s1, m2, s2), 12);
    }

    [Fact]
    public void SampleEstimateApproachesTheClosedForm()
    {
        using var g = new Generator(5);
        double[] a = [1, 4, 0.25], b = [2, 1, 0.25];
        using var x = randn(40000, 3, ScalarType.Float64, generator: g) * tensor(a).sqrt();
        using var y = randn(40000, 3, ScalarType.Float64, generator: g) * tensor(b).sqrt() + tensor(new double[] { 1, 0, 0 });
        double expected = 1 + a.Zip(b, (p, q) => Math.Pow(Math.Sqrt(p) - Math.Sqrt(q), 2)).Sum();
        Assert.InRange(FrechetDistance.Compute(x, y), expected - 0.05, expected + 0.05);
    }

    [Fact]
    public void SymmetricSqrtSquaresBack()
    {
        using var f = RandomFeatures(100, 16, 9);
        using var stats = FeatureStatistics.FromFeatures(f);
        using var root = FrechetDistance.SymmetricSqrt(stats.Covariance);
        Assert.True(root.matmul(root).allclose(stats.Covariance, 1e-10, 1e-10));
    }

    [Fact]
    public void CovarianceIsUnbiased()
    {
        using var f = tensor(new double[] { 1, 2, 3, 5 }).reshape(4, 1);
        using var s = FeatureStatistics.FromFeatures(f);
        Assert.Equal(2.75, s.Mean.item<double>(), 12);
        Assert.Equal((1.75 * 1.75 + 0.75 * 0.75 + 0.25 * 0.25 + 2.25 * 2.25) / 3, s.Covariance.item<double>(), 12);
    }

    [Fact]
    public void GrowsWithMeanShiftAndScale()
    {
        using var f = RandomFeatures(300, 8, 2);
        double prev = 0;
        foreach (var shift in new[] { 0.1, 0.3, 1.0 })
        {
            using var g = f + shift;
            double fd = FrechetDistance.Compute(f, g);
            Assert.Equal(8 * shift * shift, fd, 8);
            Assert.True(fd > prev);
            prev = fd;
        }
    }
}
