namespace SelfCascade.Tests.Support;

/// <summary>
/// Process-wide tensor counts (Tensor.TotalCount) also change when the finalizer thread frees tensors that earlier
/// tests left to the GC; settling the GC before each count leaves only what the code under test did.
/// </summary>
public static class LiveTensors
{
    public static void Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }
}
