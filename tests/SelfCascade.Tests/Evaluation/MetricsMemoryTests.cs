using SelfCascade.Evaluation;
using SelfCascade.Tests.Support;
using static SelfCascade.Tests.Evaluation.SyntheticImages;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Evaluation;

/// <summary>Every metric frees what it allocates (docs/ARCHITECTURE.md §3): a second run leaves the live-tensor count unchanged.</summary>
public sealed class MetricsMemoryTests
{
    public MetricsMemoryTests() => TorchSetup.Ensure();

    [Fact]
    public void MetricsDoNotLeakTensors()
    {
        var images = RandomSet(seed: 8, count: 12, size: 32);
        var big = images.Select(i => UpscaleNearest(i, 2)).ToList();
        using var net = new FeatureNet(new FeatureNetConfig(NumClasses: 2, InputSize: 32, BaseChannels: 8, EmbeddingDim: 16));
        var extractor = new FeatureNetExtractor(net);
        void RunAll()
        {
            using var a = extractor.Extract(images);
            using var b = extractor.Extract(big);
            FrechetDistance.Compute(a, b);
            KernelInceptionDistance.Compute(a, b, subsetSize: 6, subsets: 3);
            BaseConsistency.Evaluate(big.Zip(images));
            PowerSpectrum.Distance(big, big);
            FidelityMetrics.Compare(extractor, images, big, new FidelityOptions(KidSubsetSize: 6, KidSubsets: 2, PatchSize: 16, RandomPatches: 1));
            ComponentCounter.CountComponents(images[0]);
        }
        RunAll();
        long live = Tensor.TotalCount;
        RunAll();
        Assert.Equal(live, Tensor.TotalCount);
    }
}
