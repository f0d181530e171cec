using SelfCascade.Models.Blocks;
using static TorchSharp.torch;

namespace SelfCascade.Models.Unet;

/// <summary>Which part of the UNet a hidden state leaves.</summary>
public enum UNetBlockKind { Down, Mid, Up }

/// <summary>
/// Sees, and may replace, the hidden state leaving every UNet block (the Self-Cascade feature upsamplers add to
/// these). Called inside the UNet's dispose scope:
/// <list type="bullet">
/// <item>`hidden` and `emb` belong to the UNet; to keep one beyond the call, copy it and take it out of the scope
/// (`hidden.clone().DetachFromDisposeScope()`), and dispose it yourself.</item>
/// <item>Return null to leave the hidden state as it is, or a new tensor of the same shape to continue with
/// instead; a returned tensor created during the call is disposed with the UNet's scope.</item>
/// <item>Down block k: the replacement feeds down block k+1 (or the mid block) only. The skip connections the up
/// blocks concatenate keep the block's original outputs, as in the released Self-Cascade code (docs/ARCHITECTURE.md §7:
/// decoder skip tensors stay as the HR pass made them).</item>
/// <item>Mid block: the replacement feeds the first up block. Up block k: it feeds up block k+1 (or the output
/// norm/conv).</item>
/// </list>
/// </summary>
public interface IUNetFeatureHook
{
    /// <param name="kind">Down, Mid or Up.</param>
    /// <param name="index">The block's index in `down_blocks` / `up_blocks` (0 for the mid block).</param>
    /// <param name="hidden">The hidden state leaving the block, (B, C, h, w).</param>
    /// <param name="emb">The time embedding the blocks receive, (B, time_embed_dim) (for SDXL with the text_time addition).</param>
    Tensor? OnBlockOutput(UNetBlockKind kind, int index, Tensor hidden, Tensor emb);
}

/// <summary>
/// Sees, and may replace, the hidden state after every layer inside a block: in a down or up block after layer i's
/// resnet (and transformer, in the cross-attention kinds), before it becomes a skip tensor or feeds layer i+1; in the
/// mid block after transformer i, before resnet i+1. That is where diffusers' UNetMotionModel runs its motion modules
/// (resnet -> spatial attention -> motion module, per layer). Same ownership rules as <see cref="IUNetFeatureHook"/>:
/// return null to keep the tensor, or a new tensor of the same shape, created during the call.
/// </summary>
public interface IUNetLayerHook
{
    /// <param name="kind">Down, Mid or Up.</param>
    /// <param name="block">The block's index in `down_blocks` / `up_blocks` (0 for the mid block).</param>
    /// <param name="layer">The layer's index inside the block.</param>
    /// <param name="hidden">The layer's output, (B, C, h, w).</param>
    Tensor? OnLayerOutput(UNetBlockKind kind, int block, int layer, Tensor hidden);
}

/// <summary>Optional per-call settings of <see cref="UNet2DConditionModel"/>.</summary>
public sealed class UNetForwardOptions
{
    public IUNetFeatureHook? FeatureHook { get; init; }

    /// <summary>Called after every layer inside the blocks (<see cref="IUNetLayerHook"/>); null = none.</summary>
    public IUNetLayerHook? LayerHook { get; init; }

    /// <summary>Multiplies every self-attention (attn1) logit by a fixed factor; null (default) = off, at no cost.</summary>
    public double? SelfAttentionLogitScale { get; init; }

    /// <summary>
    /// The attn-scale baseline: each self-attention layer with n tokens scales its logits by
    /// sqrt(log n / log(n / ratio)), ratio = generated pixels / training pixels (<see cref="AttentionOptions.EntropyScale"/>).
    /// </summary>
    public double? SelfAttentionEntropyRatio { get; init; }

    internal AttentionOptions Attention => SelfAttentionLogitScale is null && SelfAttentionEntropyRatio is null
        ? AttentionOptions.Default
        : new AttentionOptions { SelfAttentionLogitScale = SelfAttentionLogitScale, SelfAttentionEntropyRatio = SelfAttentionEntropyRatio };
}

/// <summary>SDXL's `added_cond_kwargs` for `addition_embed_type: "text_time"`.</summary>
/// <param name="TextEmbeds">(B, pooled width): the pooled text embedding of the second text encoder.</param>
/// <param name="TimeIds">(B, 6): original size, crop top-left, target size.</param>
public sealed record UNetAddedConditions(Tensor TextEmbeds, Tensor TimeIds);

/// <summary>
/// The encoder half's result (conv_in, down blocks, mid block): the hidden state leaving each down block and the
/// mid block, after any hook replacement. Owns its tensors.
/// </summary>
public sealed class UNetEncoderFeatures(IReadOnlyList<Tensor> down, Tensor mid) : IDisposable
{
    /// <summary>Leaving down block k (k = 0..n-1).</summary>
    public IReadOnlyList<Tensor> Down { get; } = down;
    /// <summary>Leaving the mid block.</summary>
    public Tensor Mid { get; } = mid;

    public void Dispose()
    {
        foreach (var t in Down) t.Dispose();
        Mid.Dispose();
    }
}
