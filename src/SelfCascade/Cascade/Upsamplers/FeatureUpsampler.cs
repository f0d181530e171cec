using static TorchSharp.torch;

namespace SelfCascade.Cascade.Upsamplers;

/// <summary>
/// φ for one injection point: resizes a low-res feature map (B, C, h, w) to an explicit (H, W) and transforms it
/// conditioned on the time. Every variant ends in a zero-initialised layer, so a fresh φ returns exact zeros.
/// </summary>
public abstract class FeatureUpsampler : nn.Module
{
    protected FeatureUpsampler(string name, int channels) : base(name) => Channels = channels;

    public int Channels { get; }

    /// <param name="lowRes">(B, C, h, w), in the module's dtype.</param>
    /// <param name="condition">The set's time condition (see <see cref="FeatureUpsamplerSet.TimeCondition"/>), (B, k).</param>
    /// <param name="height">Output height H.</param>
    /// <param name="width">Output width W.</param>
    public abstract Tensor Forward(Tensor lowRes, Tensor condition, long height, long width);
}
