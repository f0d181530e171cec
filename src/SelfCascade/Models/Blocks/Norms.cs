using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Models.Blocks;

/// <summary>
/// Normalisation layers initialised as PyTorch does. TorchSharp 0.107's <c>nn.GroupNorm</c> leaves its affine
/// weight and bias uninitialised (NaN or garbage seen here), which is harmless when weights are loaded but breaks
/// networks trained from scratch and random-weight benchmarks; every GroupNorm here goes through this factory.
/// </summary>
public static class Norms
{
    public static GroupNorm GroupNorm(long groups, long channels, double eps = 1e-5)
    {
        var norm = nn.GroupNorm(groups, channels, eps, affine: true);
        using (torch.no_grad())
        {
            // On the meta device there is nothing to fill (and nothing is allocated).
            if (norm.weight!.device_type != DeviceType.META)
            {
                norm.weight.fill_(1.0);
                norm.bias!.zero_();
            }
        }
        return norm;
    }
}
