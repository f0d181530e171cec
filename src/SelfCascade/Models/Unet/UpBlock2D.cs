using SelfCascade.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Models.Unet;

/// <summary>
/// diffusers `UpBlock2D`: `resnets` that each take cat([hidden, skip]) (the last skip first), then, except in the
/// last block, `upsamplers.0`.
/// </summary>
public sealed class UpBlock2D : UNetUpBlock
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Upsample2D>? upsamplers;

    public UpBlock2D(int numLayers, long inChannels, long prevOutputChannels, long outChannels, long tembChannels,
        bool addUpsample, long groups, double eps, double dropout) : base(nameof(UpBlock2D))
    {
        resnets = nn.ModuleList(Enumerable.Range(0, numLayers)
            .Select(i => new ResnetBlock2D(UpBlockChannels.ResnetIn(i, numLayers, inChannels, prevOutputChannels, outChannels),
                outChannels, tembChannels, groups, eps, dropout))
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
                next = inputs.AfterLayer(UNetBlockKind.Up, Index, i, r).MoveToOuterDisposeScope();
            }
            if (!ReferenceEquals(h, hidden)) h.Dispose();
            h = next;
        }
        if (upsamplers is not null) h = upsamplers[0].Forward(h, upsampleSize);
        return h.MoveToOuterDisposeScope();
    }
}

internal static class UpBlockChannels
{
    /// <summary>
    /// Input width of up-block resnet i (diffusers): previous block's output (i = 0) or this block's width, plus
    /// the skip's width: the block's input width for the last resnet, its output width otherwise.
    /// </summary>
    public static long ResnetIn(int i, int numLayers, long inChannels, long prevOutputChannels, long outChannels) =>
        (i == 0 ? prevOutputChannels : outChannels) + (i == numLayers - 1 ? inChannels : outChannels);
}
