using SelfCascade.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Video.Unet3D;

/// <summary>
/// diffusers `TransformerTemporalModel` as `UNet3DConditionModel` uses it (`transformer_in`, `temp_attentions.i`):
/// GroupNorm (eps 1e-6) over the (C, F, H, W) volume of each video, `proj_in` (Linear), transformer blocks attending
/// across the F frames of every pixel, `proj_out`, plus the input. No positional embedding (AnimateDiff's motion
/// modules add one; they are a separate class).
/// </summary>
public sealed class Unet3DTemporalTransformer : nn.Module
{
    private readonly GroupNorm norm;
    private readonly Linear proj_in;
    private readonly ModuleList<TemporalSelfAttentionBlock> transformer_blocks;
    private readonly Linear proj_out;

    public Unet3DTemporalTransformer(long heads, long headDim, long inChannels, long normNumGroups, int numLayers = 1)
        : base(nameof(Unet3DTemporalTransformer))
    {
        long inner = heads * headDim;
        norm = Norms.GroupNorm(normNumGroups, inChannels, 1e-6);
        proj_in = nn.Linear(inChannels, inner);
        transformer_blocks = nn.ModuleList(Enumerable.Range(0, numLayers)
            .Select(_ => new TemporalSelfAttentionBlock(inner, heads, headDim)).ToArray());
        proj_out = nn.Linear(inner, inChannels);
        RegisterComponents();
    }

    /// <param name="hidden">(B * F, C, H, W).</param>
    public Tensor Forward(Tensor hidden, long numFrames)
    {
        using var scope = torch.NewDisposeScope();
        var video = norm.call(VideoLayout.ToVideo(hidden, numFrames)); // (B, C, F, H, W)
        long b = video.shape[0], c = video.shape[1], h = video.shape[3], w = video.shape[4];
        var x = video.permute(0, 3, 4, 2, 1).reshape(b * h * w, numFrames, c);
        x = proj_in.call(x);
        foreach (var block in transformer_blocks) x = block.Forward(x);
        x = proj_out.call(x);
        x = x.reshape(b, h, w, numFrames, c).permute(0, 3, 4, 1, 2).reshape(b * numFrames, c, h, w);
        return (x + hidden).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// diffusers `BasicTransformerBlock` with `double_self_attention` and no context: `attn1` and `attn2` are both
/// self-attention over the sequence (each on its own pre-LayerNorm), then the GEGLU feed-forward `ff`.
/// </summary>
public sealed class TemporalSelfAttentionBlock : nn.Module
{
    private readonly LayerNorm norm1;
    private readonly Attention attn1;
    private readonly LayerNorm norm2;
    private readonly Attention attn2;
    private readonly LayerNorm norm3;
    private readonly FeedForward ff;

    public TemporalSelfAttentionBlock(long dim, long heads, long headDim, double normEps = 1e-5) : base(nameof(TemporalSelfAttentionBlock))
    {
        norm1 = nn.LayerNorm(dim, normEps, elementwise_affine: true);
        attn1 = new Attention(new AttentionSpec(dim, heads, headDim));
        norm2 = nn.LayerNorm(dim, normEps, elementwise_affine: true);
        attn2 = new Attention(new AttentionSpec(dim, heads, headDim));
        norm3 = nn.LayerNorm(dim, normEps, elementwise_affine: true);
        ff = new FeedForward(dim);
        RegisterComponents();
    }

    /// <param name="hidden">(N, L, dim): N sequences of L tokens.</param>
    public Tensor Forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        var x = attn1.Forward(norm1.call(hidden)) + hidden;
        x = attn2.Forward(norm2.call(x)) + x;
        x = ff.call(norm3.call(x)) + x;
        return x.MoveToOuterDisposeScope();
    }
}
