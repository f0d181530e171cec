using SelfCascade.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Models.Vae;

/// <summary>diffusers `DownEncoderBlock2D`: `resnets` without time embedding, then (not in the last block) `downsamplers.0`.</summary>
public sealed class DownEncoderBlock2D : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Downsample2D>? downsamplers;

    public DownEncoderBlock2D(int numLayers, long inChannels, long outChannels, bool addDownsample, long groups,
        double eps, long downsamplePadding) : base(nameof(DownEncoderBlock2D))
    {
        resnets = nn.ModuleList(Enumerable.Range(0, numLayers)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, null, groups, eps))
            .ToArray());
        if (addDownsample) downsamplers = nn.ModuleList(new Downsample2D(outChannels, outChannels, downsamplePadding));
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var h = input;
        foreach (var r in resnets) h = r.Forward(h, null);
        if (downsamplers is not null) h = downsamplers[0].call(h);
        return h.MoveToOuterDisposeScope();
    }
}
