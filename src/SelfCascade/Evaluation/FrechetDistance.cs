using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Evaluation;

/// <summary>
/// Fréchet distance between Gaussians fitted to two feature sets (FID's formula, Heusel et al. 2017):
/// <c>FD = ‖μ1 - μ2‖² + Tr(Σ1 + Σ2 - 2 (Σ1 Σ2)^{1/2})</c>.
/// The trace of the matrix square root is computed stably in float64 from a symmetric form:
/// <c>Σ1 Σ2 = Σ1^{1/2} (Σ1^{1/2} Σ2 Σ1^{1/2}) Σ1^{-1/2}</c> is similar to the symmetric PSD matrix
/// <c>M = Σ1^{1/2} Σ2 Σ1^{1/2}</c>, so <c>Tr (Σ1 Σ2)^{1/2} = Σ_k sqrt(λ_k(M))</c>. Both square roots come from
/// <c>torch.linalg.eigh</c>, with eigenvalues clamped at 0 (rounding makes tiny negative ones); no inverse is taken,
/// so singular covariances (N ≤ D) are fine.
/// </summary>
public static class FrechetDistance
{
    /// <summary>FD between two (N, D) feature matrices.</summary>
    public static double Compute(Tensor features1, Tensor features2)
    {
        using var a = FeatureStatistics.FromFeatures(features1);
        using var b = FeatureStatistics.FromFeatures(features2);
        return Compute(a, b);
    }

    public static double Compute(FeatureStatistics a, FeatureStatistics b) => Compute(a.Mean, a.Covariance, b.Mean, b.Covariance);

    /// <summary><c>FD = ‖μ1 - μ2‖² + Tr Σ1 + Tr Σ2 - 2 Tr (Σ1 Σ2)^{1/2}</c>, clamped at 0 against rounding.</summary>
    public static double Compute(Tensor mean1, Tensor cov1, Tensor mean2, Tensor cov2)
    {
        if (!mean1.shape.SequenceEqual(mean2.shape) || !cov1.shape.SequenceEqual(cov2.shape))
            throw new ArgumentException($"feature dimensions differ: [{string.Join(",", mean1.shape)}] vs [{string.Join(",", mean2.shape)}]");
        using var scope = NewDisposeScope();
        var mu1 = mean1.to(ScalarType.Float64); var mu2 = mean2.to(ScalarType.Float64);
        var s1 = cov1.to(ScalarType.Float64); var s2 = cov2.to(ScalarType.Float64);
        double meanTerm = (mu1 - mu2).square().sum().item<double>();
        double traces = s1.trace().item<double>() + s2.trace().item<double>();
        double fd = meanTerm + traces - 2 * TraceSqrtProduct(s1, s2);
        return Math.Max(0, fd);
    }

    /// <summary><c>Tr (Σ1 Σ2)^{1/2} = Σ_k sqrt(max(λ_k(Σ1^{1/2} Σ2 Σ1^{1/2}), 0))</c> for symmetric PSD Σ1, Σ2.</summary>
    public static double TraceSqrtProduct(Tensor cov1, Tensor cov2)
    {
        using var scope = NewDisposeScope();
        var root1 = SymmetricSqrt(cov1.to(ScalarType.Float64));
        var m = Symmetrize(root1.matmul(cov2.to(ScalarType.Float64)).matmul(root1));
        var (eigenvalues, _) = linalg.eigh(m);
        return eigenvalues.clamp_min(0.0).sqrt().sum().item<double>();
    }

    /// <summary>PSD square root of a symmetric matrix: <c>S^{1/2} = V diag(sqrt(max(λ, 0))) Vᵀ</c> with <c>S = V diag(λ) Vᵀ</c>.</summary>
    public static Tensor SymmetricSqrt(Tensor symmetric)
    {
        using var scope = NewDisposeScope();
        var (eigenvalues, vectors) = linalg.eigh(Symmetrize(symmetric.to(ScalarType.Float64)));
        var root = (vectors * eigenvalues.clamp_min(0.0).sqrt().unsqueeze(0)).matmul(vectors.t());
        return Symmetrize(root).MoveToOuterDisposeScope();
    }

    /// <summary><c>(A + Aᵀ) / 2</c>: removes the asymmetry rounding leaves, so eigh sees the matrix it assumes.</summary>
    private static Tensor Symmetrize(Tensor a) => (a + a.t()) / 2.0;
}
