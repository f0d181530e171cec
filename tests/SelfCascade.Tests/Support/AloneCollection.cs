namespace SelfCascade.Tests.Support;

/// <summary>
/// Tests that train a network and assert what it learned (accuracy, loss ratios, KID ranks), or that compare runs
/// bit for bit, run in this collection: alone, after the parallel ones. Other tests change process-wide torch state
/// while they run (libtorch's thread count; TorchSharp's default dtype and device, which model construction sets
/// for the duration of a build; the allocator's free blocks, which CpuConv2dTests fills with NaN). Run alone these
/// tests are deterministic (the same values on every run, measured); run beside the whole suite one of them once
/// learned much less (held-out accuracy 0.725 where every lone run gives 1.0; cause not pinned down).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AloneCollection
{
    public const string Name = "alone: training and process-wide torch state";
}
