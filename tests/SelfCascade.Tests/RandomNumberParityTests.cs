using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests;

/// <summary>rng/ fixtures: TorchSharp's CPU generator must reproduce PyTorch's draws bit for bit.</summary>
public class RandomNumberParityTests
{
    public RandomNumberParityTests() => TorchSetup.Ensure();

    [Theory]
    [InlineData(0)]
    [InlineData(42)]
    [InlineData(1234)]
    [InlineData(7)]
    public void RandnAndRandMatchPyTorch(int seed)
    {
        using var f = Parity.Open("rng", "randn.safetensors");
        using var refN = f.Read($"randn_seed{seed}");
        using (var g = new Generator((ulong)seed))
        using (var ours = randn(refN.shape, generator: g))
            Parity.AssertEqual(ours, refN, $"randn seed {seed}");
        using var refU = f.Read($"rand_seed{seed}");
        using (var g = new Generator((ulong)seed))
        using (var ours = rand(refU.shape, generator: g))
            Parity.AssertEqual(ours, refU, $"rand seed {seed}");
    }

    [Fact]
    public void SequentialDrawsFromOneGenerator()
    {
        using var f = Parity.Open("rng", "randn.safetensors");
        using var g = new Generator(0);
        using var first = randn([1, 4, 8, 8], generator: g);
        using var second = randn([1, 4, 16, 16], generator: g);
        using var r1 = f.Read("seq_seed0_first");
        using var r2 = f.Read("seq_seed0_second");
        Parity.AssertEqual(first, r1, "first draw");
        Parity.AssertEqual(second, r2, "second draw");
    }

    [Fact]
    public void GlobalManualSeed()
    {
        using var f = Parity.Open("rng", "randn.safetensors");
        torch.manual_seed(5);
        using var ours = randn(2, 3);
        using var r = f.Read("global_manual_seed5_randn_2x3");
        Parity.AssertEqual(ours, r, "manual_seed(5) randn(2,3)");
    }
}
