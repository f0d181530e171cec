using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Models.Vae;

/// <summary>
/// diffusers `DiagonalGaussianDistribution`, the VAE posterior: mean and log-variance are the two channel halves
/// of the encoder's moments; log-variance clamped to [-30, 20]; std = exp(0.5 logvar). Owns its tensors.
/// </summary>
public sealed class DiagonalGaussianDistribution : IDisposable
{
    public Tensor Mean { get; }
    public Tensor LogVar { get; }
    public Tensor Std { get; }
    public Tensor Var { get; }

    /// <param name="moments">(B, 2 x latent_channels, h, w); not kept.</param>
    public DiagonalGaussianDistribution(Tensor moments)
    {
        using var scope = torch.NewDisposeScope();
        var halves = moments.chunk(2, 1);
        using var lo = (-30.0).ToScalar();
        using var hi = 20.0.ToScalar();
        using var half = 0.5.ToScalar();
        var logvar = halves[1].clamp(lo, hi);
        Mean = halves[0].contiguous().DetachFromDisposeScope();
        LogVar = logvar.DetachFromDisposeScope();
        Std = logvar.mul(half).exp().DetachFromDisposeScope();
        Var = logvar.exp().DetachFromDisposeScope();
    }

    /// <summary>The distribution's mode (= its mean), as a new tensor.</summary>
    public Tensor Mode() => Mean.clone();

    /// <summary>
    /// mean + std * noise, with noise drawn as diffusers' `randn_tensor(mean.shape, generator)`: on the
    /// generator's device (CPU for a CPU generator, then moved to the mean's device) in the mean's dtype, or on the
    /// mean's device when no generator is given.
    /// </summary>
    public Tensor Sample(Generator? generator = null)
    {
        using var scope = torch.NewDisposeScope();
        var drawDevice = generator is null ? Mean.device : generator.device;
        var noise = torch.randn(Mean.shape, dtype: Mean.dtype, device: drawDevice, generator: generator).to(Mean.device);
        return (Mean + Std * noise).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        Mean.Dispose();
        LogVar.Dispose();
        Std.Dispose();
        Var.Dispose();
    }
}
