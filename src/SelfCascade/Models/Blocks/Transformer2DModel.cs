using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Models.Blocks;

/// <summary>
/// diffusers `Transformer2DModel` for continuous inputs: GroupNorm (eps 1e-6), `proj_in`, a stack of
/// <see cref="BasicTransformerBlock"/>s over the H*W tokens, `proj_out`, plus the input. `use_linear_projection`
/// makes proj_in/proj_out Linear layers applied to tokens (SD 2.x, SDXL); otherwise 1x1 convolutions applied to
/// the feature map (SD 1.x).
/// </summary>
public sealed class Transformer2DModel : nn.Module
{
    private readonly GroupNorm norm;
    private readonly nn.Module<Tensor, Tensor> proj_in;
    private readonly ModuleList<BasicTransformerBlock> transformer_blocks;
    private readonly nn.Module<Tensor, Tensor> proj_out;
    private readonly bool _linear;
    private readonly long _inner;

    public Transformer2DModel(long heads, long headDim, long inChannels, long numLayers, long crossAttentionDim,
        long normNumGroups, bool useLinearProjection, bool upcastAttention, double dropout = 0.0)
        : base(nameof(Transformer2DModel))
    {
        _inner = heads * headDim;
        _linear = useLinearProjection;
        norm = Norms.GroupNorm(normNumGroups, inChannels, 1e-6);
        proj_in = _linear ? nn.Linear(inChannels, _inner) : nn.Conv2d(inChannels, _inner, 1, stride: 1, padding: 0L);
        transformer_blocks = nn.ModuleList(Enumerable.Range(0, (int)numLayers)
            .Select(_ => new BasicTransformerBlock(_inner, heads, headDim, crossAttentionDim, upcastAttention, dropout))
            .ToArray());
        proj_out = _linear ? nn.Linear(_inner, inChannels) : nn.Conv2d(_inner, inChannels, 1, stride: 1, padding: 0L);
        RegisterComponents();
    }

    public Tensor Forward(Tensor hidden, Tensor context, AttentionOptions options)
    {
        using var scope = torch.NewDisposeScope();
        long b = hidden.shape[0], h = hidden.shape[2], w = hidden.shape[3];
        var x = norm.call(hidden);
        if (_linear) x = proj_in.call(x.permute(0, 2, 3, 1).reshape(b, h * w, x.shape[1]));
        else
        {
            x = proj_in.call(x);
            x = x.permute(0, 2, 3, 1).reshape(b, h * w, _inner);
        }
        foreach (var block in transformer_blocks) x = block.Forward(x, context, options);
        if (_linear) x = proj_out.call(x).reshape(b, h, w, -1).permute(0, 3, 1, 2).contiguous();
        else x = proj_out.call(x.reshape(b, h, w, _inner).permute(0, 3, 1, 2).contiguous());
        return (x + hidden).MoveToOuterDisposeScope();
    }
}
