using SelfCascade.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Video.Models;

/// <summary>
/// diffusers `TransformerTemporalModel` as a motion module: the (B*F, C, h, w) features regrouped per video,
/// GroupNorm over (C/groups, F, h, w) (eps 1e-6; frames share the statistics), `proj_in`, transformer blocks over the
/// F frames of every spatial position, `proj_out`, plus the input. With `proj_out` zero it is the identity, which is
/// how AnimateDiff starts training and what makes the frames independent.
/// </summary>
public sealed class TransformerTemporalModel : nn.Module
{
    private readonly GroupNorm norm;
    private readonly Linear proj_in;
    private readonly ModuleList<TemporalTransformerBlock> transformer_blocks;
    private readonly Linear proj_out;

    public TransformerTemporalModel(long inChannels, long heads, long normGroups, long? maxSeqLength, int numLayers = 1)
        : base(nameof(TransformerTemporalModel))
    {
        long headDim = inChannels / heads;
        long inner = heads * headDim;
        norm = Norms.GroupNorm(normGroups, inChannels, 1e-6);
        proj_in = nn.Linear(inChannels, inner);
        transformer_blocks = nn.ModuleList(Enumerable.Range(0, numLayers)
            .Select(_ => new TemporalTransformerBlock(inner, heads, headDim, maxSeqLength)).ToArray());
        proj_out = nn.Linear(inner, inChannels);
        RegisterComponents();
    }

    /// <summary>The output projection (zeroed by the structural tests and by a fresh adapter).</summary>
    public Linear ProjOut => proj_out;

    /// <param name="hidden">(B*F, C, h, w), frame f of video b at index b*F + f.</param>
    /// <param name="frames">F.</param>
    public Tensor Forward(Tensor hidden, int frames)
    {
        long bf = hidden.shape[0], c = hidden.shape[1], h = hidden.shape[2], w = hidden.shape[3];
        if (frames < 1 || bf % frames != 0)
            throw new ArgumentException($"a batch of {bf} feature maps is not a whole number of {frames}-frame videos");
        long b = bf / frames;
        using var scope = torch.NewDisposeScope();
        var x = hidden.reshape(b, frames, c, h, w).permute(0, 2, 1, 3, 4);
        x = norm.call(x);
        x = x.permute(0, 3, 4, 2, 1).reshape(b * h * w, frames, c);
        x = proj_in.call(x);
        foreach (var block in transformer_blocks) x = block.Forward(x);
        x = proj_out.call(x);
        x = x.reshape(b, h, w, frames, c).permute(0, 3, 4, 1, 2).reshape(bf, c, h, w);
        return (x + hidden).MoveToOuterDisposeScope();
    }
}
