using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Models.Blocks;

/// <summary>
/// diffusers `BasicTransformerBlock` (norm_type "layer_norm", GEGLU): pre-LayerNorm self-attention `attn1`,
/// cross-attention `attn2` on the text states, feed-forward `ff`, each added back to the residual stream.
/// </summary>
public sealed class BasicTransformerBlock : nn.Module
{
    private readonly LayerNorm norm1;
    private readonly Attention attn1;
    private readonly LayerNorm norm2;
    private readonly Attention attn2;
    private readonly LayerNorm norm3;
    private readonly FeedForward ff;

    public BasicTransformerBlock(long dim, long heads, long headDim, long crossAttentionDim, bool upcastAttention,
        double dropout = 0.0, double normEps = 1e-5) : base(nameof(BasicTransformerBlock))
    {
        norm1 = nn.LayerNorm(dim, normEps, elementwise_affine: true);
        attn1 = new Attention(new AttentionSpec(dim, heads, headDim) { Dropout = dropout, UpcastAttention = upcastAttention });
        norm2 = nn.LayerNorm(dim, normEps, elementwise_affine: true);
        attn2 = new Attention(new AttentionSpec(dim, heads, headDim)
        {
            CrossAttentionDim = crossAttentionDim, Dropout = dropout, UpcastAttention = upcastAttention,
        });
        norm3 = nn.LayerNorm(dim, normEps, elementwise_affine: true);
        ff = new FeedForward(dim, dropout: dropout);
        RegisterComponents();
    }

    public Tensor Forward(Tensor hidden, Tensor context, AttentionOptions options)
    {
        using var scope = torch.NewDisposeScope();
        var x = attn1.Forward(norm1.call(hidden), null, options.SelfAttentionScaleFor(hidden.shape[1])) + hidden;
        x = attn2.Forward(norm2.call(x), context) + x;
        x = ff.call(norm3.call(x)) + x;
        return x.MoveToOuterDisposeScope();
    }
}
