using SelfCascade.Imaging;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Evaluation;

/// <summary><see cref="IFeatureExtractor"/> over a <see cref="FeatureNet"/>: the pooled penultimate activations, in float64.</summary>
public sealed class FeatureNetExtractor(FeatureNet net, int batchSize = 64, bool ownsNet = false) : IFeatureExtractor, IDisposable
{
    public FeatureNet Net { get; } = net;
    public int FeatureDimension => Net.Config.EmbeddingDim;

    public Tensor Extract(IReadOnlyList<RgbImage> images)
    {
        if (images.Count == 0) return zeros(0, FeatureDimension, ScalarType.Float64);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Net.eval();
        var parts = new List<Tensor>();
        for (int start = 0; start < images.Count; start += batchSize)
        {
            var batch = images.Skip(start).Take(batchSize).ToList();
            parts.Add(Net.Embed(Net.Preprocess(batch)).to(ScalarType.Float64));
        }
        return cat(parts, 0).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        if (ownsNet) Net.Dispose();
    }
}
