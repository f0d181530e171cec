using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Evaluation;

/// <summary>Mean and covariance of a set of feature vectors, float64 on the CPU (what the Fréchet distance needs).</summary>
public sealed class FeatureStatistics : IDisposable
{
    /// <summary>(D) mean: <c>μ = (1/N) Σ x_i</c>.</summary>
    public Tensor Mean { get; }
    /// <summary>(D, D) unbiased covariance: <c>Σ = (1/(N-1)) Σ (x_i - μ)(x_i - μ)ᵀ</c> (numpy's <c>np.cov</c>, as pytorch-fid).</summary>
    public Tensor Covariance { get; }
    public int Count { get; }

    public FeatureStatistics(Tensor mean, Tensor covariance, int count)
    {
        if (mean.dim() != 1 || covariance.dim() != 2 || covariance.shape[0] != mean.shape[0] || covariance.shape[1] != mean.shape[0])
            throw new ArgumentException($"mean [{string.Join(",", mean.shape)}] and covariance [{string.Join(",", covariance.shape)}] do not match");
        // Owned copies, outside any dispose scope: the statistics live until Dispose.
        Mean = mean.detach().cpu().to(ScalarType.Float64).clone().DetachFromDisposeScope();
        Covariance = covariance.detach().cpu().to(ScalarType.Float64).clone().DetachFromDisposeScope();
        Count = count;
    }

    /// <summary>Statistics of an (N, D) feature matrix (N ≥ 2).</summary>
    public static FeatureStatistics FromFeatures(Tensor features)
    {
        if (features.dim() != 2) throw new ArgumentException($"expected (N, D) features, got [{string.Join(",", features.shape)}]");
        if (features.shape[0] < 2) throw new ArgumentException($"a covariance needs at least 2 feature vectors, got {features.shape[0]}");
        using var scope = NewDisposeScope();
        var x = features.detach().cpu().to(ScalarType.Float64);
        var mu = x.mean([0]);
        var centred = x - mu;
        var cov = centred.t().matmul(centred) / (double)(x.shape[0] - 1);
        return new FeatureStatistics(mu, cov, (int)x.shape[0]);
    }

    public void Dispose()
    {
        Mean.Dispose();
        Covariance.Dispose();
    }
}
