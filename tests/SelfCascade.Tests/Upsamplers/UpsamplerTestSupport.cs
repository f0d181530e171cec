using SelfCascade.Cascade.Upsamplers;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Upsamplers;

internal static class UpsamplerTestSupport
{
    /// <summary>Replaces every parameter with small seeded noise (a "trained" set whose output is not zero).</summary>
    public static void Perturb(FeatureUpsamplerSet set, long seed, double scale = 0.05)
    {
        using var _ = torch.no_grad();
        using var g = new Generator((ulong)seed);
        foreach (var (_, p) in set.named_parameters())
        {
            using var r = randn(p.shape, dtype: ScalarType.Float32, generator: g).mul_(scale).to(p.device).to_type(p.dtype);
            p.copy_(r);
        }
    }

    public static bool SameState(FeatureUpsamplerSet a, FeatureUpsamplerSet b)
    {
        var sb = b.state_dict();
        foreach (var (name, t) in a.state_dict())
            if (!sb.TryGetValue(name, out var u) || !t.Same(u)) return false;
        return a.state_dict().Count == sb.Count;
    }
}

internal static class TensorEquality
{
    /// <summary>Same shape and every element equal (torch.equal).</summary>
    public static bool Same(this Tensor a, Tensor b)
    {
        if (!a.shape.SequenceEqual(b.shape)) return false;
        using var e = a.cpu().eq(b.cpu()).all();
        return e.item<bool>();
    }
}
