using SelfCascade.Models.Blocks;
using SelfCascade.Models.Unet;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Video.Unet3D;

/// <summary>diffusers `UpBlock3D`: per layer cat([hidden, skip]), `resnets.i`, `temp_convs.i`; then, except in the last block, `upsamplers.0`.</summary>
public sealed class UpBlock3D : Unet3DUpBlock
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<TemporalConvLayer> temp_convs;
    private readonly ModuleList<Upsample2D>? upsamplers;

    public UpBlock3D(int numLayers, long inChannels, long prevOutputChannels, long outChannels, long tembChannels,
        bool addUpsample, long groups, double eps) : base(nameof(UpBlock3D))
    {
        resnets = nn.ModuleList(Enumerable.Range(0, numLayers)
            .Select(i => new ResnetBlock2D(UpBlockChannels.ResnetIn(i, numLayers, inChannels, prevOutputChannels, outChannels),
                outChannels, tembChannels, groups, eps)).ToArray());
        temp_convs = nn.ModuleList(Enumerable.Range(0, numLayers).Select(_ => new TemporalConvLayer(outChannels, outChannels, groups)).ToArray());
        if (addUpsample) upsamplers = nn.ModuleList(new Upsample2D(outChannels, outChannels));
        RegisterComponents();
    }

    public override int NumResnets => resnets.Count;

    public override Tensor Forward(Tensor hidden, IReadOnlyList<Tensor> skips, UNetBlockInputs inputs, long numFrames, long[]? upsampleSize)
    {
        using var scope = torch.NewDisposeScope();
        var h = hidden;
        for (int i = 0; i < resnets.Count; i++)
        {
            Tensor next;
            using (var layer = torch.NewDisposeScope())
                next = temp_convs[i].Forward(resnets[i].Forward(torch.cat([h, skips[skips.Count - 1 - i]], 1), inputs.Emb), numFrames)
                    .MoveToOuterDisposeScope();
            if (!ReferenceEquals(h, hidden)) h.Dispose();
            h = next;
        }
        if (upsamplers is not null) h = upsamplers[0].Forward(h, upsampleSize);
        return h.MoveToOuterDisposeScope();
    }
}
