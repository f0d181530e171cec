using SelfCascade.Models.Blocks;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Models.Unet;

/// <summary>What every UNet block receives besides its hidden state.</summary>
/// <param name="Emb">The time embedding (B, time_embed_dim).</param>
/// <param name="Context">The text states for cross-attention (B, L, cross_attention_dim).</param>
/// <param name="Attention">Per-call attention settings.</param>
/// <param name="LayerHook">Sees the hidden state after every layer inside the blocks (the video motion modules).</param>
public sealed record UNetBlockInputs(Tensor Emb, Tensor Context, AttentionOptions Attention, IUNetLayerHook? LayerHook = null)
{
    /// <summary>The layer's output, or what <see cref="LayerHook"/> replaces it with.</summary>
    internal Tensor AfterLayer(UNetBlockKind kind, int block, int layer, Tensor hidden)
    {
        if (LayerHook?.OnLayerOutput(kind, block, layer, hidden) is not Tensor replacement) return hidden;
        if (!replacement.shape.SequenceEqual(hidden.shape))
            throw new InvalidOperationException($"layer hook returned [{string.Join(",", replacement.shape)}] for {kind} block {block} layer {layer}, expected [{string.Join(",", hidden.shape)}]");
        return replacement;
    }
}

/// <summary>A down block: resnets (with transformers for the cross-attention kind), then an optional downsampler.</summary>
public abstract class UNetDownBlock(string name) : nn.Module(name)
{
    /// <summary>The block's index in `down_blocks` (set by the UNet; what <see cref="IUNetLayerHook"/> is told).</summary>
    public int Index { get; internal set; }

    /// <summary>
    /// Runs the block. <c>Skips</c> are diffusers' `res_samples`: the output of every resnet (or resnet +
    /// transformer) layer and of the downsampler; the hidden state leaving the block is the last of them.
    /// </summary>
    public abstract Tensor[] Forward(Tensor hidden, UNetBlockInputs inputs);

    /// <summary>How many skip tensors <see cref="Forward"/> returns.</summary>
    public abstract int NumOutputs { get; }
}

/// <summary>An up block: resnets that each first concatenate one skip tensor, then an optional upsampler.</summary>
public abstract class UNetUpBlock(string name) : nn.Module(name)
{
    /// <summary>The block's index in `up_blocks` (set by the UNet; what <see cref="IUNetLayerHook"/> is told).</summary>
    public int Index { get; internal set; }

    /// <summary>How many skip tensors the block consumes (its resnet count).</summary>
    public abstract int NumResnets { get; }

    /// <param name="skips">The block's skip tensors in the order they were produced; consumed from the last.</param>
    /// <param name="upsampleSize">Size for the upsampler when the latent is not a multiple of the overall factor.</param>
    public abstract Tensor Forward(Tensor hidden, IReadOnlyList<Tensor> skips, UNetBlockInputs inputs, long[]? upsampleSize);
}
