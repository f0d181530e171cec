using SelfCascade.Models.Blocks;
using SelfCascade.Models.Unet;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Video.Unet3D;

/// <summary>diffusers `DownBlock3D`: per layer `resnets.i` then `temp_convs.i`; then, except in the last block, `downsamplers.0`.</summary>
public sealed class DownBlock3D : Unet3DDownBlock
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<TemporalConvLayer> temp_convs;
    private readonly ModuleList<Downsample2D>? downsamplers;

    public DownBlock3D(int numLayers, long inChannels, long outChannels, long tembChannels, bool addDownsample,
        long groups, double eps, long downsamplePadding) : base(nameof(DownBlock3D))
    {
        resnets = nn.ModuleList(Enumerable.Range(0, numLayers)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, tembChannels, groups, eps)).ToArray());
        temp_convs = nn.ModuleList(Enumerable.Range(0, numLayers).Select(_ => new TemporalConvLayer(outChannels, outChannels, groups)).ToArray());
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
                h = temp_convs[i].Forward(resnets[i].Forward(h, inputs.Emb), numFrames).MoveToOuterDisposeScope();
            outputs.Add(h);
        }
        if (downsamplers is not null) outputs.Add(downsamplers[0].call(h));
        foreach (var t in outputs) t.MoveToOuterDisposeScope();
        return outputs.ToArray();
    }
}
