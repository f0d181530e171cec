using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Evaluation;

/// <summary>KID over random subsets: mean and standard deviation (population form) of the per-subset MMD² estimates.</summary>
public sealed record KidResult(double Mean, double Std, int SubsetSize, int Subsets);

/// <summary>
/// Kernel Inception Distance (Bińkowski et al. 2018): the unbiased estimate of the squared MMD with the cubic
/// polynomial kernel <c>k(x, y) = (xᵀy / d + 1)³</c>, averaged over random subsets of both sets (as torchmetrics
/// and clean-fid: each subset drawn without replacement, independently per set and per repetition).
/// Comparing a set with itself, the two subsets share about m²/N vectors, so the mean sits slightly below 0,
/// by about <c>2 (mean k(x,x) - mean k(x,y)) / N</c>; for different sets of one distribution it is unbiased.
/// </summary>
public static class KernelInceptionDistance
{
    /// <summary>KID between (N1, D) and (N2, D) features; the subset size is capped at min(N1, N2).</summary>
    public static KidResult Compute(Tensor features1, Tensor features2, int subsetSize = 1000, int subsets = 100, int seed = 0)
    {
        if (features1.dim() != 2 || features2.dim() != 2 || features1.shape[1] != features2.shape[1])
            throw new ArgumentException($"expected (N, D) features of one D, got [{string.Join(",", features1.shape)}] and [{string.Join(",", features2.shape)}]");
        if (subsets < 1) throw new ArgumentOutOfRangeException(nameof(subsets), subsets, "at least one subset");
        int m = (int)Math.Min(subsetSize, Math.Min(features1.shape[0], features2.shape[0]));
        if (m < 2) throw new ArgumentException($"KID needs subsets of at least 2 vectors, got {m}");
        using var scope = NewDisposeScope();
        var x = features1.detach().cpu().to(ScalarType.Float64);
        var y = features2.detach().cpu().to(ScalarType.Float64);
        var rng = new Random(seed);
        var values = new double[subsets];
        for (int s = 0; s < subsets; s++)
        {
            using var inner = NewDisposeScope();
            var xs = x.index_select(0, SubsetIndices(rng, (int)x.shape[0], m));
            var ys = y.index_select(0, SubsetIndices(rng, (int)y.shape[0], m));
            values[s] = UnbiasedMmd2(xs, ys);
        }
        double mean = values.Average();
        double std = Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / subsets);
        return new KidResult(mean, std, m, subsets);
    }

    /// <summary>Cubic polynomial kernel matrix: <c>K_ij = (x_i · y_j / d + 1)³</c>.</summary>
    public static Tensor PolynomialKernel(Tensor x, Tensor y)
    {
        using var scope = NewDisposeScope();
        double d = x.shape[1];
        return (x.matmul(y.t()) / d + 1.0).pow(3).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Unbiased MMD² for equal-size samples (m each):
    /// <c>[Σ_{i≠j} k(x_i,x_j) + Σ_{i≠j} k(y_i,y_j)] / (m(m-1)) - 2 Σ_{i,j} k(x_i,y_j) / m²</c>.
    /// </summary>
    public static double UnbiasedMmd2(Tensor x, Tensor y)
    {
        if (x.shape[0] != y.shape[0]) throw new ArgumentException("the unbiased estimate here takes equal-size samples");
        using var scope = NewDisposeScope();
        double m = x.shape[0];
        var kxx = PolynomialKernel(x, x);
        var kyy = PolynomialKernel(y, y);
        var kxy = PolynomialKernel(x, y);
        double offDiagXX = kxx.sum().item<double>() - kxx.diagonal().sum().item<double>();
        double offDiagYY = kyy.sum().item<double>() - kyy.diagonal().sum().item<double>();
        return (offDiagXX + offDiagYY) / (m * (m - 1)) - 2 * kxy.sum().item<double>() / (m * m);
    }

    /// <summary>m distinct indices of 0..n-1 (partial Fisher-Yates).</summary>
    private static Tensor SubsetIndices(Random rng, int n, int m)
    {
        var idx = Enumerable.Range(0, n).ToArray();
        for (int i = 0; i < m; i++)
        {
            int j = rng.Next(i, n);
            (idx[i], idx[j]) = (idx[j], idx[i]);
        }
        return tensor(idx.Take(m).Select(v => (long)v).ToArray());
    }
}
