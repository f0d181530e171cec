using TorchSharp;

namespace SelfCascade.Tests.Support;

/// <summary>Process-wide torch settings for the tests (docs/ARCHITECTURE.md §8: two threads, deterministic).</summary>
internal static class TorchSetup
{
    private static int _done;

    public static void Ensure()
    {
        if (Interlocked.Exchange(ref _done, 1) == 1) return;
        torch.set_num_threads(2);
    }
}
