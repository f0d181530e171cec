using SelfCascade.Tests.Support;
using TorchSharp;

namespace SelfCascade.Tests;

public class SmokeTests
{
    [Fact]
    public void TorchLoadsAndComputes()
    {
        TorchSetup.Ensure();
        using var a = torch.arange(6, dtype: torch.float32).reshape(2, 3);
        using var s = a.sum();
        Assert.Equal(15f, s.item<float>());
    }
}
