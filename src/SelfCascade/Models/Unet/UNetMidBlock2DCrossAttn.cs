using SelfCascade.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Models.Unet;

/// <summary>
/// diffusers `UNetMidBlock2DCrossAttn` (one layer): `resnets.0`, then `attentions.0` and `resnets.1`; the resnets
/// divide by `mid_block_scale_factor`.
/// </summary>
public sealed class UNetMidBlock2DCrossAttn : nn.Module
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Transformer2DModel> attentions;

    public UNetMidBlock2DCrossAttn(long channels, long tembChannels, int transformerLayers, long groups, double eps,
        double dropout, double outputScaleFactor, long heads, long crossAttentionDim, bool useLinearProjection,
        bool upcastAttention, int numLayers = 1) : base(nameof(UNetMidBlock2DCrossAttn))
    {
        resnets = nn.ModuleList(Enumerable.Range(0, numLayers + 1)
            .Select(_ => new ResnetBlock2D(channels, channels, tembChannels, groups, eps, dropout, outputScaleFactor))
            .ToArray());
        attentions = nn.ModuleList(Enumerable.Range(0, numLayers)
            .Select(_ => new Transformer2DModel(heads, channels / heads, channels, transformerLayers, crossAttentionDim,
                groups, useLinearProjection, upcastAttention, dropout))
            .ToArray());
        RegisterComponents();
    }

    public Tensor Forward(Tensor hidden, UNetBlockInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var h = resnets[0].Forward(hidden, inputs.Emb);
        for (int i = 0; i < attentions.Count; i++)
        {
            h = attentions[i].Forward(h, inputs.Context, inputs.Attention);
            h = inputs.AfterLayer(UNetBlockKind.Mid, 0, i, h);
            h = resnets[i + 1].Forward(h, inputs.Emb);
        }
        return h.MoveToOuterDisposeScope();
    }
}
