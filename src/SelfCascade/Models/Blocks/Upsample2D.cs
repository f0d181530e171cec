using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SelfCascade.Models.Blocks;

/// <summary>
/// diffusers `Upsample2D(use_conv=True)`: nearest-neighbour 2x (or to an explicit size, the UNet's
/// `forward_upsample_size` path for latents that are not a multiple of the overall factor), then a 3x3 `conv`.
/// </summary>
public sealed class Upsample2D : nn.Module
{
    private readonly Conv2d conv;
    private static readonly double[] Twice = [2.0, 2.0];

    public Upsample2D(long channels, long outChannels) : base(nameof(Upsample2D))
    {
        conv = nn.Conv2d(channels, outChannels, 3, stride: 1, padding: 1);
        RegisterComponents();
    }

    /// <param name="outputSize">(height, width) to resize to, or null for exactly 2x.</param>
    public Tensor Forward(Tensor input, long[]? outputSize = null)
    {
        using var scope = torch.NewDisposeScope();
        var up = outputSize is null
            ? F.interpolate(input, scale_factor: Twice, mode: InterpolationMode.Nearest)
            : F.interpolate(input, size: outputSize, mode: InterpolationMode.Nearest);
        return CpuConv2d.Forward(conv, up).MoveToOuterDisposeScope();
    }
}
