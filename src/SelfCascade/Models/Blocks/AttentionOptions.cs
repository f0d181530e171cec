namespace SelfCascade.Models.Blocks;

/// <summary>Per-call attention settings carried down to every transformer block.</summary>
public sealed class AttentionOptions
{
    public static readonly AttentionOptions Default = new();

    /// <summary>
    /// Multiplies every self-attention (attn1) logit by this factor, e.g. sqrt(log N_test / log N_train) for the
    /// "attn-scale" baseline. Null (the default) leaves attention untouched at no cost.
    /// </summary>
    public double? SelfAttentionLogitScale { get; init; }
}
