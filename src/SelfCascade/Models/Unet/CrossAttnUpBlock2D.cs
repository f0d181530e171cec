using SelfCascade.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Models.Unet;

/// <summary>
/// diffusers `CrossAttnUpBlock2D`: layers of resnet on cat([hidden, skip]) then <see cref="Transformer2DModel"/>,
/// then, except in the last block, `upsamplers.0`.
/// </summary>
public sealed class CrossAttnUpBlock2D : UNetUpBlock
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Transformer2DModel> attentions;
    private readonly ModuleList<Upsample2D>? upsamplers;

    public CrossAttnUpBlock2D(int numLayers, int transformerLayers, long inChannels, long prevOutputChannels,
        long outChannels, long tembChannels, bool addUpsample, long groups, double eps, double dropout, long heads,
        long crossAttentionDim, bool useLinearProjection, bool upcastAttention) : base(nameof(CrossAttnUpBlock2D))
    {
        resnets = nn.ModuleList(Enumerable.Range(0, numLayers)
            .Select(i => new ResnetBlock2D(UpBlockChannels.ResnetIn(i, numLayers, inChannels, prevOutputChannels, outChannels),
                outChannels, tembChannels, groups, eps, dropout))
            .ToArray());
        attentions = nn.ModuleList(Enumerable.Range(0, numLayers)
            .Select(_ => new Transformer2DModel(heads, outChannels / heads, outChannels, transformerLayers, crossAttentionDim,
                groups, useLinearProjection, upcastAttention, dropout))
            .ToArray());
        if (addUpsample) upsamplers = nn.ModuleList(new Upsample2D(outChannels, outChannels));
        RegisterComponents();
    }

    public override int NumResnets => resnets.Count;

    public override Tensor Forward(Tensor hidden, IReadOnlyList<Tensor> skips, UNetBlockInputs inputs, long[]? upsampleSize)
    {
        using var scope = torch.NewDisposeScope();
        var h = hidden;
        for (int i = 0; i < resnets.Count; i++)
        {
            Tensor next;
            using (var layer = torch.NewDisposeScope())
            {
                var r = resnets[i].Forward(torch.cat([h, skips[skips.Count - 1 - i]], 1), inputs.Emb);
                var a = attentions[i].Forward(r, inputs.Context, inputs.Attention);
                next = inputs.AfterLayer(UNetBlockKind.Up, Index, i, a).MoveToOuterDisposeScope();
            }
            if (!ReferenceEquals(h, hidden)) h.Dispose();
            h = next;
        }
        if (upsamplers is not null) h = upsamplers[0].Forward(h, upsampleSize);
        return h.MoveToOuterDisposeScope();
    }
}
