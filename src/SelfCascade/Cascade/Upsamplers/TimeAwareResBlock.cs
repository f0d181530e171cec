using SelfCascade.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SelfCascade.Cascade.Upsamplers;

/// <summary>
/// The released code's `ResBlock` (latent-diffusion style, `use_scale_shift_norm=False`, equal in/out channels) with
/// its state-dict names: `in_layers` = [GroupNorm32, SiLU, conv3x3], `emb_layers` = [SiLU, Linear(temb → C)] added
/// as a per-channel bias, `out_layers` = [GroupNorm32, SiLU, Dropout, conv3x3], identity skip. With
/// <c>up</c>, the normalised activations and the skip are resized (nearest) between in_layers' SiLU and conv, as
/// the released `up=True` block does with a 2x nearest upsample; here to an explicit size so that any stage ratio
/// (e.g. 1.67) works, which equals the 2x upsample at ratio 2. GroupNorm32 normalises in fp32 and casts back.
/// </summary>
public sealed class TimeAwareResBlock : nn.Module
{
    private readonly ModuleList<nn.Module> in_layers;
    private readonly ModuleList<nn.Module> emb_layers;
    private readonly ModuleList<nn.Module> out_layers;
    // Typed views of the list entries (properties, so RegisterComponents does not register them twice).
    private GroupNorm _inNorm => (GroupNorm)in_layers[0];
    private Conv2d _inConv => (Conv2d)in_layers[2];
    private Linear _embLinear => (Linear)emb_layers[1];
    private GroupNorm _outNorm => (GroupNorm)out_layers[0];
    private Conv2d _outConv => (Conv2d)out_layers[3];

    public bool Up { get; }

    public TimeAwareResBlock(long channels, long tembChannels, bool up, int groups = 32, double eps = 1e-5)
        : base(nameof(TimeAwareResBlock))
    {
        Up = up;
        in_layers = nn.ModuleList<nn.Module>(nn.GroupNorm(groups, channels, eps, affine: true), nn.SiLU(),
            nn.Conv2d(channels, channels, 3, stride: 1, padding: 1));
        emb_layers = nn.ModuleList<nn.Module>(nn.SiLU(), nn.Linear(tembChannels, channels));
        out_layers = nn.ModuleList<nn.Module>(nn.GroupNorm(groups, channels, eps, affine: true), nn.SiLU(), nn.Dropout(0.0),
            nn.Conv2d(channels, channels, 3, stride: 1, padding: 1));
        // TorchSharp 0.107's GroupNorm leaves its affine parameters uninitialised; PyTorch's are ones and zeros.
        using (torch.no_grad())
        {
            foreach (var n in new[] { _inNorm, _outNorm }) { n.weight!.fill_(1.0); n.bias!.zero_(); }
        }
        RegisterComponents();
    }

    /// <summary>The out conv (the released code zero-initialises it: `zero_module`).</summary>
    internal Conv2d OutConv => _outConv;

    /// <param name="x">(B, C, h, w) in the block's dtype.</param>
    /// <param name="emb">(B, temb) in the block's dtype.</param>
    /// <param name="size">Target (H, W) when <see cref="Up"/>.</param>
    public Tensor Forward(Tensor x, Tensor emb, long[]? size)
    {
        using var scope = torch.NewDisposeScope();
        var h = F.silu(GroupNorm32(_inNorm, x));
        if (Up)
        {
            if (size is null) throw new ArgumentNullException(nameof(size), "an up block needs a target size");
            h = F.interpolate(h, size, mode: InterpolationMode.Nearest);
            x = F.interpolate(x, size, mode: InterpolationMode.Nearest);
        }
        h = CpuConv2d.Forward(_inConv, h);
        var e = _embLinear.call(F.silu(emb)).to_type(h.dtype);
        h = h + e.unsqueeze(-1).unsqueeze(-1);
        h = CpuConv2d.Forward(_outConv, F.silu(GroupNorm32(_outNorm, h)));
        return (x + h).MoveToOuterDisposeScope();
    }

    private static Tensor GroupNorm32(GroupNorm norm, Tensor x)
    {
        if (x.dtype == ScalarType.Float32) return norm.call(x);
        return F.group_norm(x.to_type(ScalarType.Float32), norm.num_groups, norm.weight!.to_type(ScalarType.Float32),
            norm.bias!.to_type(ScalarType.Float32), norm.eps).to_type(x.dtype);
    }
}
