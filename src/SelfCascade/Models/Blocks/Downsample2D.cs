using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SelfCascade.Models.Blocks;

/// <summary>
/// diffusers `Downsample2D(use_conv=True)`: a stride-2 3x3 `conv`. With `padding=0` (the VAE encoder) diffusers
/// pads right and bottom by one first, so odd sizes round the same way.
/// </summary>
public sealed class Downsample2D : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv;
    private readonly bool _asymmetricPad;

    public Downsample2D(long channels, long outChannels, long padding) : base(nameof(Downsample2D))
    {
        conv = nn.Conv2d(channels, outChannels, 3, stride: 2, padding: padding);
        _asymmetricPad = padding == 0;
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        if (!_asymmetricPad) return CpuConv2d.Forward(conv, input);
        using var scope = torch.NewDisposeScope();
        var padded = F.pad(input, [0, 1, 0, 1], PaddingModes.Constant, 0.0);
        return CpuConv2d.Forward(conv, padded).MoveToOuterDisposeScope();
    }
}
