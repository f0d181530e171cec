using SelfCascade.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Models.Vae;

/// <summary>diffusers `UpDecoderBlock2D`: `resnets` without time embedding, then (not in the last block) `upsamplers.0` (2x).</summary>
public sealed class UpDecoderBlock2D : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Upsample2D>? upsamplers;

    public UpDecoderBlock2D(int numLayers, long inChannels, long outChannels, bool addUpsample, long groups, double eps)
        : base(nameof(UpDecoderBlock2D))
    {
        resnets = nn.ModuleList(Enumerable.Range(0, numLayers)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, null, groups, eps))
            .ToArray());
        if (addUpsample) upsamplers = nn.ModuleList(new Upsample2D(outChannels, outChannels));
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var h = input;
        foreach (var r in resnets)
        {
            var next = r.Forward(h, null);
            if (!ReferenceEquals(h, input)) h.Dispose();
            h = next;
        }
        if (upsamplers is not null) h = upsamplers[0].Forward(h);
        return h.MoveToOuterDisposeScope();
    }
}
