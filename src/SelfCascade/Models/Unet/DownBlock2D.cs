using SelfCascade.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Models.Unet;

/// <summary>diffusers `DownBlock2D`: `resnets` then, except in the last block, `downsamplers.0` (stride-2 conv).</summary>
public sealed class DownBlock2D : UNetDownBlock
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Downsample2D>? downsamplers;

    public DownBlock2D(int numLayers, long inChannels, long outChannels, long tembChannels, bool addDownsample,
        long groups, double eps, double dropout, long downsamplePadding) : base(nameof(DownBlock2D))
    {
        resnets = nn.ModuleList(Enumerable.Range(0, numLayers)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, tembChannels, groups, eps, dropout))
            .ToArray());
        if (addDownsample) downsamplers = nn.ModuleList(new Downsample2D(outChannels, outChannels, downsamplePadding));
        RegisterComponents();
    }

    public override int NumOutputs => resnets.Count + (downsamplers is null ? 0 : 1);

    public override Tensor[] Forward(Tensor hidden, UNetBlockInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var outputs = new List<Tensor>();
        var h = hidden;
        for (int i = 0; i < resnets.Count; i++)
        {
            h = inputs.AfterLayer(UNetBlockKind.Down, Index, i, resnets[i].Forward(h, inputs.Emb));
            outputs.Add(h);
        }
        if (downsamplers is not null) outputs.Add(downsamplers[0].call(h));
        foreach (var t in outputs) t.MoveToOuterDisposeScope();
        return outputs.ToArray();
    }
}
