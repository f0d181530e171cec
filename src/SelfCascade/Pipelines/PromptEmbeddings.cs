using static TorchSharp.torch;

namespace SelfCascade.Pipelines;

/// <summary>
/// Text conditioning for one prompt: the cross-attention states, and for SDXL the pooled embedding. With
/// classifier-free guidance the negative halves are kept too; <see cref="ForUnet"/> gives diffusers' batch order
/// (negative first, then positive).
/// </summary>
public sealed class PromptEmbeddings : IDisposable
{
    public required Tensor Positive { get; init; }
    public Tensor? Negative { get; init; }
    public Tensor? PooledPositive { get; init; }
    public Tensor? PooledNegative { get; init; }

    public bool HasGuidance => Negative is not null;

    /// <summary>States for the UNet batch: cat([negative, positive]) with CFG, repeated per image.</summary>
    public Tensor ForUnet(int imagesPerPrompt) => Batch(Negative, Positive, imagesPerPrompt);

    public Tensor? PooledForUnet(int imagesPerPrompt) =>
        PooledPositive is null ? null : Batch(PooledNegative, PooledPositive, imagesPerPrompt);

    private static Tensor Batch(Tensor? negative, Tensor positive, int n)
    {
        using var scope = NewDisposeScope();
        var pos = n == 1 ? positive.alias() : positive.repeat_interleave(n, 0);
        var result = negative is null ? pos : cat([n == 1 ? negative.alias() : negative.repeat_interleave(n, 0), pos], 0);
        return result.MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        Positive.Dispose();
        Negative?.Dispose();
        PooledPositive?.Dispose();
        PooledNegative?.Dispose();
    }
}
