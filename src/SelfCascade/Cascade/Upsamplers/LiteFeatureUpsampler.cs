using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SelfCascade.Cascade.Upsamplers;

/// <summary>
/// A genuinely small φ: bilinear resize (align_corners=false) to the target size, a depthwise 3x3 conv
/// (<c>conv</c>, 10·C parameters), then a per-channel gain and bias predicted from the set's shared k-dimensional
/// time condition by <c>modulation</c> (Linear(k → 2C), zero-initialised, 2C(k+1) parameters):
/// φ = gain(t) ⊙ dwconv(up(h)) + bias(t). With k = 4 that is 20·C per point.
/// </summary>
public sealed class LiteFeatureUpsampler : FeatureUpsampler
{
    private readonly Conv2d conv;
    private readonly Linear modulation;

    public LiteFeatureUpsampler(int channels, int conditionDim) : base(nameof(LiteFeatureUpsampler), channels)
    {
        conv = nn.Conv2d(channels, channels, 3, stride: 1, padding: 1, groups: channels);
        modulation = nn.Linear(conditionDim, 2L * channels);
        using (torch.no_grad()) { modulation.weight!.zero_(); modulation.bias!.zero_(); }
        RegisterComponents();
    }

    public override Tensor Forward(Tensor lowRes, Tensor condition, long height, long width)
    {
        using var scope = torch.NewDisposeScope();
        var x = F.interpolate(lowRes, [height, width], mode: InterpolationMode.Bilinear, align_corners: false);
        var y = conv.call(x);
        var gb = modulation.call(condition.to_type(y.dtype)).chunk(2, 1);
        var gain = gb[0].unsqueeze(-1).unsqueeze(-1);
        var bias = gb[1].unsqueeze(-1).unsqueeze(-1);
        return (y * gain + bias).MoveToOuterDisposeScope();
    }
}
