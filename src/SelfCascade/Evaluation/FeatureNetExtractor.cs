using SelfCascade.Imaging;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Evaluation;

/// <summary><see cref="IFeatureExtractor"/> over a <see cref="FeatureNet"/>: the pooled penultimate activations, in float64;
/// and, when the net carries class names (captions), the <see cref="IPromptClassifier"/> behind prompt-match accuracy.</summary>
public sealed class FeatureNetExtractor(FeatureNet net, int batchSize = 64, bool ownsNet = false) : IFeatureExtractor, IPromptClassifier, IDisposable
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

    /// <summary>Rank (0 = top) of each image's caption among the net's classes by logit; -1 when the caption is no class.</summary>
    public int[] CaptionRanks(IReadOnlyList<RgbImage> images, IReadOnlyList<string> captions)
    {
        if (images.Count != captions.Count) throw new ArgumentException($"{images.Count} images but {captions.Count} captions");
        var names = Net.ClassNames ?? throw new InvalidOperationException("the feature network has no class names (train it with `selfcascade train-feature-net`)");
        var index = names.Select((c, i) => (c, i)).ToDictionary(t => t.c, t => t.i, StringComparer.Ordinal);
        var labels = captions.Select(c => index.TryGetValue(c, out var i) ? i : -1).ToArray();
        var result = new int[images.Count];
        for (int start = 0; start < images.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var count = Math.Min(batchSize, images.Count - start);
            var batch = images.Skip(start).Take(count).ToList();
            var batchLabels = labels.Skip(start).Take(count).ToArray();
            var ranks = FeatureNetTrainer.Ranks(Net, Net.Preprocess(batch), batchLabels.Select(l => Math.Max(l, 0)).ToArray());
            for (int i = 0; i < count; i++) result[start + i] = batchLabels[i] < 0 ? -1 : ranks[i];
        }
        return result;
    }

    /// <summary>The class name (caption) with the highest logit for each image.</summary>
    public string[] TopClasses(IReadOnlyList<RgbImage> images)
    {
        var names = Net.ClassNames ?? throw new InvalidOperationException("the feature network has no class names (train it with `selfcascade train-feature-net`)");
        var result = new string[images.Count];
        using var noGrad = no_grad();
        for (int start = 0; start < images.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var count = Math.Min(batchSize, images.Count - start);
            var top = Net.forward(Net.Preprocess(images.Skip(start).Take(count).ToList())).argmax(1).data<long>().ToArray();
            for (int i = 0; i < count; i++) result[start + i] = names[(int)top[i]];
        }
        return result;
    }

    public void Dispose()
    {
        if (ownsNet) Net.Dispose();
    }
}
