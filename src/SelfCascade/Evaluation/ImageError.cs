using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Evaluation;

/// <summary>Pixel error measures between two same-shaped (N, C, H, W) tensors in [0, 1] (peak = 1), in float64.</summary>
public static class ImageError
{
    /// <summary>Mean squared error: <c>MSE = mean((a - b)^2)</c>.</summary>
    public static double Mse(Tensor a, Tensor b)
    {
        CheckSameShape(a, b);
        using var scope = NewDisposeScope();
        return (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).square().mean().item<double>();
    }

    /// <summary>Peak signal-to-noise ratio in dB: <c>PSNR = 10 log10(peak^2 / MSE)</c>; +∞ when MSE = 0.</summary>
    public static double Psnr(double mse, double peak = 1.0) =>
        mse <= 0 ? double.PositiveInfinity : 10.0 * Math.Log10(peak * peak / mse);

    /// <summary>
    /// Structural similarity (Wang et al. 2004) with a normalised Gaussian window (default 11×11, σ = 1.5, shrunk to
    /// the image when smaller), per channel, over valid window positions only, then averaged:
    /// <c>SSIM = mean[(2 μa μb + C1)(2 σab + C2) / ((μa² + μb² + C1)(σa² + σb² + C2))]</c>,
    /// <c>C1 = (0.01 L)²</c>, <c>C2 = (0.03 L)²</c>, <c>L = 1</c>; moments are Gaussian-weighted (population form).
    /// </summary>
    public static double Ssim(Tensor a, Tensor b, int windowSize = 11, double sigma = 1.5)
    {
        CheckSameShape(a, b);
        if (windowSize < 1) throw new ArgumentOutOfRangeException(nameof(windowSize), windowSize, "window must be at least 1 pixel");
        using var scope = NewDisposeScope();
        var x = a.to(ScalarType.Float64);
        var y = b.to(ScalarType.Float64);
        long channels = x.shape[1];
        int size = (int)Math.Min(windowSize, Math.Min(x.shape[2], x.shape[3]));
        var window = GaussianWindow(size, sigma).expand(channels, 1, size, size).contiguous();
        Tensor Filter(Tensor t) => nn.functional.conv2d(t, window, groups: channels);
        var muX = Filter(x);
        var muY = Filter(y);
        var varX = Filter(x * x) - muX * muX;
        var varY = Filter(y * y) - muY * muY;
        var covXY = Filter(x * y) - muX * muY;
        const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
        var map = (2 * muX * muY + c1) * (2 * covXY + c2) / ((muX * muX + muY * muY + c1) * (varX + varY + c2));
        return map.mean().item<double>();
    }

    /// <summary>A (1, 1, n, n) float64 Gaussian window summing to 1: <c>g(i) ∝ exp(-(i - (n-1)/2)² / 2σ²)</c>, outer product.</summary>
    public static Tensor GaussianWindow(int size, double sigma)
    {
        using var scope = NewDisposeScope();
        var i = arange(size, ScalarType.Float64) - (size - 1) / 2.0;
        var g = (-(i * i) / (2 * sigma * sigma)).exp();
        g = g / g.sum();
        return g.outer(g).reshape(1, 1, size, size).MoveToOuterDisposeScope();
    }

    private static void CheckSameShape(Tensor a, Tensor b)
    {
        if (!a.shape.SequenceEqual(b.shape))
            throw new ArgumentException($"images differ in shape: [{string.Join(",", a.shape)}] vs [{string.Join(",", b.shape)}]");
        if (a.dim() != 4) throw new ArgumentException($"expected (N,C,H,W) tensors, got [{string.Join(",", a.shape)}]");
    }
}
