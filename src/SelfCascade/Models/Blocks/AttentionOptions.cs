namespace SelfCascade.Models.Blocks;

/// <summary>Per-call attention settings carried down to every transformer block.</summary>
public sealed class AttentionOptions
{
    public static readonly AttentionOptions Default = new();

    /// <summary>
    /// Multiplies every self-attention (attn1) logit by this fixed factor. Null (the default) leaves attention
    /// untouched at no cost. Takes precedence over <see cref="SelfAttentionEntropyRatio"/>.
    /// </summary>
    public double? SelfAttentionLogitScale { get; init; }

    /// <summary>
    /// The "attn-scale" baseline (attention-entropy scaling, Jin et al. 2023, as the released Self-Cascade code runs it
    /// in ldm/attention.py): a self-attention layer with n query tokens multiplies its logits by
    /// <see cref="EntropyScale"/>(n, ratio), where ratio = generated pixels / training pixels, so each UNet level gets
    /// the factor of its own token count. Null = off.
    /// </summary>
    public double? SelfAttentionEntropyRatio { get; init; }

    /// <summary>
    /// sqrt(log n / log(n / ratio)) = sqrt(log_{n_train} n): the released code's <c>math.log(test_tn, train_tn) ** 0.5</c>
    /// with <c>train_tn = test_tn / (test_res / train_res)</c>. 1 where the training token count would be at most 1
    /// (the logarithm base is undefined there).
    /// </summary>
    public static double EntropyScale(long tokens, double ratio)
    {
        if (!(ratio > 0)) throw new ArgumentOutOfRangeException(nameof(ratio), ratio, "the pixel ratio must be positive");
        double trainTokens = tokens / ratio;
        return trainTokens <= 1 || tokens <= 1 ? 1.0 : Math.Sqrt(Math.Log(tokens) / Math.Log(trainTokens));
    }

    /// <summary>The factor attn1 applies to n query tokens (null = none).</summary>
    internal double? SelfAttentionScaleFor(long tokens) =>
        SelfAttentionLogitScale ?? (SelfAttentionEntropyRatio is double r ? EntropyScale(tokens, r) : null);
}
