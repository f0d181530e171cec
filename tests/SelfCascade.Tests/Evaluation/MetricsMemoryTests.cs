using SelfCascade.Evaluation;
using SelfCascade.Tests.Support;
using static SelfCascade.Tests.Evaluation.SyntheticImages;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Evaluation;

/// <summary>Every metric frees what it allocates (docs/ARCHITECTURE.md §3): a second run leaves the live-tensor count unchanged.</summary>
public sealed class MetricsMemoryTests
{
    public MetricsMemoryTests() => TorchSetup.Ensure();

    /// <summary>
    /// Tensors left alive by a second run of <paramref name="run"/> (the first warms caches). Counted on this thread
    /// (TorchSharp's exact per-thread created-minus-disposed count): the process-wide Tensor.TotalCount also drops
    /// whenever the finalizer thread frees tensors that earlier tests left to the GC, which made this test flaky (it
    /// once went down by 8), and it would hide a leaked tensor that the GC happens to finalize. Pending finalizers run
    /// before both counts all the same, so the process-wide count must not grow either.
    /// </summary>
    private static (long Thread, long Process) Growth(Action run)
    {
        run();
        static void Settle() { GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect(); }
        Settle();
        long thread = DisposeScopeManager.Statistics.ThreadTotalLiveCount, process = Tensor.TotalCount;
        run();
        Settle();
        return (DisposeScopeManager.Statistics.ThreadTotalLiveCount - thread, Tensor.TotalCount - process);
    }

    private static Action AllMetrics(Tensor? leakEachRun = null)
    {
        var images = RandomSet(seed: 8, count: 12, size: 32);
        var big = images.Select(i => UpscaleNearest(i, 2)).ToList();
        var net = new FeatureNet(new FeatureNetConfig(NumClasses: 2, InputSize: 32, BaseChannels: 8, EmbeddingDim: 16));
        var extractor = new FeatureNetExtractor(net);
        return () =>
        {
            using var a = extractor.Extract(images);
            using var b = extractor.Extract(big);
            FrechetDistance.Compute(a, b);
            KernelInceptionDistance.Compute(a, b, subsetSize: 6, subsets: 3);
            BaseConsistency.Evaluate(big.Zip(images));
            PowerSpectrum.Distance(big, big);
            FidelityMetrics.Compare(extractor, images, big, new FidelityOptions(KidSubsetSize: 6, KidSubsets: 2, PatchSize: 16, RandomPatches: 1));
            ComponentCounter.CountComponents(images[0]);
            if (leakEachRun is not null) _ = leakEachRun.mul(2); // a "metric" that forgets one intermediate
        };
    }

    [Fact]
    public void MetricsDoNotLeakTensors()
    {
        var (thread, process) = Growth(AllMetrics());
        Assert.Equal(0, thread);
        Assert.True(process <= 0, $"process-wide live tensors grew by {process}");
    }

    [Fact]
    public void TheLeakCheckCatchesALeakingMetric()
    {
        using var x = ones(4);
        var (thread, _) = Growth(AllMetrics(leakEachRun: x));
        Assert.Equal(1, thread); // caught even though the GC may already have finalized the leaked tensor
    }
}
