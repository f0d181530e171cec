using SelfCascade.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Video.Models;

/// <summary>
/// diffusers `BasicTransformerBlock` as AnimateDiff's motion modules build it (`double_self_attention`, no
/// cross-attention, `positional_embeddings="sinusoidal"`): pre-LayerNorm self-attention `attn1`, a second
/// self-attention `attn2`, each on the normed input plus the frame-position table `pos_embed`, then the GEGLU
/// feed-forward `ff`; each added back to the residual stream. Tokens are the frames of one spatial position.
/// </summary>
public sealed class TemporalTransformerBlock : nn.Module
{
    private readonly LayerNorm norm1;
    private readonly Attention attn1;
    private readonly LayerNorm norm2;
    private readonly Attention attn2;
    private readonly LayerNorm norm3;
    private readonly FeedForward ff;
    private readonly SinusoidalPositionalEmbedding? pos_embed;

    public TemporalTransformerBlock(long dim, long heads, long headDim, long? maxSeqLength) : base(nameof(TemporalTransformerBlock))
    {
        norm1 = nn.LayerNorm(dim, 1e-5, elementwise_affine: true);
        attn1 = new Attention(new AttentionSpec(dim, heads, headDim));
        norm2 = nn.LayerNorm(dim, 1e-5, elementwise_affine: true);
        attn2 = new Attention(new AttentionSpec(dim, heads, headDim));
        norm3 = nn.LayerNorm(dim, 1e-5, elementwise_affine: true);
        ff = new FeedForward(dim);
        if (maxSeqLength is long max) pos_embed = new SinusoidalPositionalEmbedding(dim, max);
        RegisterComponents();
    }

    /// <param name="hidden">(N, frames, dim).</param>
    public Tensor Forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        var n = norm1.call(hidden);
        if (pos_embed is not null) n = pos_embed.call(n);
        var x = attn1.Forward(n) + hidden;
        n = norm2.call(x);
        if (pos_embed is not null) n = pos_embed.call(n);
        x = attn2.Forward(n) + x;
        x = ff.call(norm3.call(x)) + x;
        return x.MoveToOuterDisposeScope();
    }
}
