using SelfCascade.Models.Blocks;
using SelfCascade.Models.Unet;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Video.Unet3D;

/// <summary>
/// diffusers `CrossAttnDownBlock3D`: per layer `resnets.i`, `temp_convs.i`, `attentions.i` (spatial transformer with
/// cross-attention, linear projections), `temp_attentions.i`; then, except in the last block, `downsamplers.0`.
/// </summary>
public sealed class CrossAttnDownBlock3D : Unet3DDownBlock
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<TemporalConvLayer> temp_convs;
    private readonly ModuleList<Transformer2DModel> attentions;
    private readonly ModuleList<Unet3DTemporalTransformer> temp_attentions;
    private readonly ModuleList<Downsample2D>? downsamplers;

    public CrossAttnDownBlock3D(int numLayers, long inChannels, long outChannels, long tembChannels, bool addDownsample,
        long groups, double eps, long downsamplePadding, long headDim, long crossAttentionDim) : base(nameof(CrossAttnDownBlock3D))
    {
        long heads = outChannels / headDim;
        resnets = nn.ModuleList(Enumerable.Range(0, numLayers)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, tembChannels, groups, eps)).ToArray());
        temp_convs = nn.ModuleList(Enumerable.Range(0, numLayers).Select(_ => new TemporalConvLayer(outChannels, outChannels, groups)).ToArray());
        attentions = nn.ModuleList(Enumerable.Range(0, numLayers)
            .Select(_ => new Transformer2DModel(heads, headDim, outChannels, 1, crossAttentionDim, groups, useLinearProjection: true, upcastAttention: false))
            .ToArray());
        temp_attentions = nn.ModuleList(Enumerable.Range(0, numLayers)
            .Select(_ => new Unet3DTemporalTransformer(heads, headDim, outChannels, groups)).ToArray());
        if (addDownsample) downsamplers = nn.ModuleList(new Downsample2D(outChannels, outChannels, downsamplePadding));
        RegisterComponents();
    }

    public override Tensor[] Forward(Tensor hidden, UNetBlockInputs inputs, long numFrames)
    {
        using var scope = torch.NewDisposeScope();
        var outputs = new List<Tensor>();
        var h = hidden;
        for (int i = 0; i < resnets.Count; i++)
        {
            using (var layer = torch.NewDisposeScope())
            {
                var r = resnets[i].Forward(h, inputs.Emb);
                r = temp_convs[i].Forward(r, numFrames);
                r = attentions[i].Forward(r, inputs.Context, inputs.Attention);
                h = temp_attentions[i].Forward(r, numFrames).MoveToOuterDisposeScope();
            }
            outputs.Add(h);
        }
        if (downsamplers is not null) outputs.Add(downsamplers[0].call(h));
        foreach (var t in outputs) t.MoveToOuterDisposeScope();
        return outputs.ToArray();
    }
}
