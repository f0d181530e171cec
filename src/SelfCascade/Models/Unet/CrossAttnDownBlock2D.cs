using SelfCascade.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Models.Unet;

/// <summary>
/// diffusers `CrossAttnDownBlock2D`: layers of resnet then <see cref="Transformer2DModel"/> (`resnets.i`,
/// `attentions.i`), then, except in the last block, `downsamplers.0`.
/// </summary>
public sealed class CrossAttnDownBlock2D : UNetDownBlock
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Transformer2DModel> attentions;
    private readonly ModuleList<Downsample2D>? downsamplers;

    public CrossAttnDownBlock2D(int numLayers, int transformerLayers, long inChannels, long outChannels, long tembChannels,
        bool addDownsample, long groups, double eps, double dropout, long downsamplePadding, long heads,
        long crossAttentionDim, bool useLinearProjection, bool upcastAttention) : base(nameof(CrossAttnDownBlock2D))
    {
        resnets = nn.ModuleList(Enumerable.Range(0, numLayers)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, tembChannels, groups, eps, dropout))
            .ToArray());
        attentions = nn.ModuleList(Enumerable.Range(0, numLayers)
            .Select(_ => new Transformer2DModel(heads, outChannels / heads, outChannels, transformerLayers, crossAttentionDim,
                groups, useLinearProjection, upcastAttention, dropout))
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
            using (var layer = torch.NewDisposeScope())
            {
                var r = resnets[i].Forward(h, inputs.Emb);
                var a = attentions[i].Forward(r, inputs.Context, inputs.Attention);
                h = inputs.AfterLayer(UNetBlockKind.Down, Index, i, a).MoveToOuterDisposeScope();
            }
            outputs.Add(h);
        }
        if (downsamplers is not null) outputs.Add(downsamplers[0].call(h));
        foreach (var t in outputs) t.MoveToOuterDisposeScope();
        return outputs.ToArray();
    }
}
