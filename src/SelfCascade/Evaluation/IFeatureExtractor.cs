using SelfCascade.Imaging;
using static TorchSharp.torch;

namespace SelfCascade.Evaluation;

/// <summary>
/// Maps images to feature vectors for the Fréchet distance and KID. <see cref="FeatureNetExtractor"/> is the
/// project's own; any other network can be plugged in by implementing this.
/// </summary>
public interface IFeatureExtractor
{
    /// <summary>Length D of one feature vector.</summary>
    int FeatureDimension { get; }

    /// <summary>(N, D) float64 CPU tensor, one row per image, in input order; the caller disposes it.</summary>
    Tensor Extract(IReadOnlyList<RgbImage> images);
}
