using SelfCascade.Models.Blocks;
using SelfCascade.Models.Unet;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Video.Unet3D;

/// <summary>
/// diffusers `UNetMidBlock3DCrossAttn` (one layer): `resnets.0`, `temp_convs.0`, then `attentions.0`,
/// `temp_attentions.0`, `resnets.1`, `temp_convs.1`; the resnets divide by `mid_block_scale_factor`.
/// </summary>
public sealed class UNetMidBlock3DCrossAttn : nn.Module
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<TemporalConvLayer> temp_convs;
    private readonly ModuleList<Transformer2DModel> attentions;
    private readonly ModuleList<Unet3DTemporalTransformer> temp_attentions;

    public UNetMidBlock3DCrossAttn(long channels, long tembChannels, long groups, double eps, double outputScaleFactor,
        long headDim, long crossAttentionDim, int numLayers = 1) : base(nameof(UNetMidBlock3DCrossAttn))
    {
        long heads = channels / headDim;
        resnets = nn.ModuleList(Enumerable.Range(0, numLayers + 1)
            .Select(_ => new ResnetBlock2D(channels, channels, tembChannels, groups, eps, 0.0, outputScaleFactor)).ToArray());
        temp_convs = nn.ModuleList(Enumerable.Range(0, numLayers + 1).Select(_ => new TemporalConvLayer(channels, channels, groups)).ToArray());
        attentions = nn.ModuleList(Enumerable.Range(0, numLayers)
            .Select(_ => new Transformer2DModel(heads, headDim, channels, 1, crossAttentionDim, groups, useLinearProjection: true, upcastAttention: false))
            .ToArray());
        temp_attentions = nn.ModuleList(Enumerable.Range(0, numLayers)
            .Select(_ => new Unet3DTemporalTransformer(heads, headDim, channels, groups)).ToArray());
        RegisterComponents();
    }

    public Tensor Forward(Tensor hidden, UNetBlockInputs inputs, long numFrames)
    {
        using var scope = torch.NewDisposeScope();
        var h = resnets[0].Forward(hidden, inputs.Emb);
        h = temp_convs[0].Forward(h, numFrames);
        for (int i = 0; i < attentions.Count; i++)
        {
            h = attentions[i].Forward(h, inputs.Context, inputs.Attention);
            h = temp_attentions[i].Forward(h, numFrames);
            h = resnets[i + 1].Forward(h, inputs.Emb);
            h = temp_convs[i + 1].Forward(h, numFrames);
        }
        return h.MoveToOuterDisposeScope();
    }
}
