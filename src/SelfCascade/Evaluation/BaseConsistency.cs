using SelfCascade.Imaging;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Evaluation;

/// <summary>Error of one output, downsampled to the base size, against the base sample (values in [0, 1]).</summary>
public sealed record ConsistencyResult(double Mse, double Psnr, double? Ssim);

/// <summary>Mean consistency over a set; <see cref="PsnrOfMeanMse"/> avoids the +∞ of exact matches.</summary>
public sealed record ConsistencySummary(IReadOnlyList<ConsistencyResult> Samples)
{
    public double MeanMse => Samples.Count == 0 ? 0 : Samples.Average(s => s.Mse);
    /// <summary><c>10 log10(1 / mean MSE)</c>.</summary>
    public double PsnrOfMeanMse => ImageError.Psnr(MeanMse);
    public double? MeanSsim => Samples.Count == 0 || Samples.Any(s => s.Ssim is null) ? null : Samples.Average(s => s.Ssim!.Value);
}

/// <summary>
/// Consistency with the base-size sample (the idea behind the paper's FID_b, Section 5): a faithful higher-resolution
/// output, shrunk back to the base size, should reproduce the base image. The output is downsampled with
/// <see cref="ImageTensors.ResizeAntialiased"/> (box average for integer factors, antialiased bilinear otherwise).
/// </summary>
public static class BaseConsistency
{
    public static ConsistencyResult Measure(RgbImage output, RgbImage baseImage, bool withSsim = true)
    {
        using var scope = NewDisposeScope();
        return Measure(ImageTensors.ToUnit(output), ImageTensors.ToUnit(baseImage), withSsim);
    }

    /// <summary>Both (1, 3, H, W) in [0, 1] (use <see cref="ImageTensors.SignedToUnit"/> for [-1, 1] tensors).</summary>
    public static ConsistencyResult Measure(Tensor outputUnit, Tensor baseUnit, bool withSsim = true)
    {
        using var scope = NewDisposeScope();
        var small = ImageTensors.ResizeAntialiased(outputUnit.to(ScalarType.Float64), (int)baseUnit.shape[2], (int)baseUnit.shape[3]);
        var reference = baseUnit.to(ScalarType.Float64);
        double mse = ImageError.Mse(small, reference);
        double? ssim = withSsim ? ImageError.Ssim(small, reference) : null;
        return new ConsistencyResult(mse, ImageError.Psnr(mse), ssim);
    }

    public static ConsistencySummary Evaluate(IEnumerable<(RgbImage Output, RgbImage Base)> pairs, bool withSsim = true) =>
        new(pairs.Select(p => Measure(p.Output, p.Base, withSsim)).ToList());
}
