using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace SelfCascade.Cascade.Upsamplers;

/// <summary>
/// The released upsampler (`feature_upsamplerK` = TimestepEmbedSequential(ResBlock(up=True), ResBlock)), names
/// `0.*` and `1.*` as there, plus a per-channel output <c>gate</c> (zero-initialised here). The released blocks
/// zero-initialise their out convs, so an untrained released upsampler returns the nearest-upsampled low-res
/// feature itself, not zero; the gate makes a fresh set exact zeros (tuning-free result unchanged) and is set to 1
/// when a released checkpoint is imported, which then behaves exactly as released.
/// </summary>
public sealed class FullFeatureUpsampler : FeatureUpsampler
{
    [ComponentName(Name = "0")] private readonly TimeAwareResBlock block0;
    [ComponentName(Name = "1")] private readonly TimeAwareResBlock block1;
    private readonly Parameter gate;

    public FullFeatureUpsampler(int channels, long tembChannels, int groups = 32) : base(nameof(FullFeatureUpsampler), channels)
    {
        block0 = new TimeAwareResBlock(channels, tembChannels, up: true, groups);
        block1 = new TimeAwareResBlock(channels, tembChannels, up: false, groups);
        // As released: zero_module on each block's last conv.
        using (torch.no_grad())
        {
            foreach (var b in new[] { block0, block1 }) { b.OutConv.weight!.zero_(); b.OutConv.bias!.zero_(); }
        }
        gate = new Parameter(torch.zeros(channels));
        RegisterComponents();
    }

    /// <summary>The output gate (C,), zero for a fresh set and 1 after importing a released checkpoint.</summary>
    public Parameter Gate => gate;

    public override Tensor Forward(Tensor lowRes, Tensor condition, long height, long width)
    {
        using var scope = torch.NewDisposeScope();
        var h = block0.Forward(lowRes, condition, [height, width]);
        h = block1.Forward(h, condition, null);
        return (h * gate.to_type(h.dtype).view(1, -1, 1, 1)).MoveToOuterDisposeScope();
    }
}
