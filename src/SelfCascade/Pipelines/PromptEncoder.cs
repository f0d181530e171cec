using SelfCascade.Models.Clip;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Pipelines;

/// <summary>
/// diffusers' <c>encode_prompt</c> for the two pipeline kinds:
/// SD 1.x/2.x: the text encoder's last hidden state (no attention mask, 77 tokens padded with the folder's pad);
/// SDXL: both encoders' penultimate hidden states concatenated on the feature axis, and the second encoder's
/// projected pooled output; with <c>force_zeros_for_empty_prompt</c> and no negative prompt, zero negatives.
/// </summary>
public sealed class PromptEncoder(ClipTokenizer tokenizer, ClipTextModel textEncoder,
    ClipTokenizer? tokenizer2 = null, ClipTextModel? textEncoder2 = null, bool forceZerosForEmptyPrompt = true)
{
    public bool IsSdxl => textEncoder2 is not null;

    /// <summary>The text encoder(s), e.g. to freeze them for training.</summary>
    public IReadOnlyList<ClipTextModel> TextEncoders => textEncoder2 is null ? [textEncoder] : [textEncoder, textEncoder2];

    public PromptEmbeddings Encode(string prompt, string? negativePrompt, bool classifierFreeGuidance, Device device, ScalarType dtype)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        using var _ = torch.inference_mode();
        if (!IsSdxl)
        {
            var pos = EncodeSd(prompt, device, dtype);
            var neg = classifierFreeGuidance ? EncodeSd(negativePrompt ?? "", device, dtype) : null;
            return new PromptEmbeddings { Positive = pos, Negative = neg };
        }
        var (p, pooled) = EncodeSdxl(prompt, device, dtype);
        if (!classifierFreeGuidance) return new PromptEmbeddings { Positive = p, PooledPositive = pooled };
        if (negativePrompt is null && forceZerosForEmptyPrompt)
            return new PromptEmbeddings { Positive = p, PooledPositive = pooled, Negative = zeros_like(p), PooledNegative = zeros_like(pooled) };
        var (n, npooled) = EncodeSdxl(negativePrompt ?? "", device, dtype);
        return new PromptEmbeddings { Positive = p, PooledPositive = pooled, Negative = n, PooledNegative = npooled };
    }

    private Tensor EncodeSd(string text, Device device, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        using var ids = Ids(tokenizer, text);
        using var output = textEncoder.Forward(ids);
        return output.LastHiddenState.to(dtype).to(device).MoveToOuterDisposeScope();
    }

    private (Tensor States, Tensor Pooled) EncodeSdxl(string text, Device device, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        using var ids1 = Ids(tokenizer, text);
        using var out1 = textEncoder.Forward(ids1, outputHiddenStates: true);
        using var ids2 = Ids(tokenizer2!, text);
        using var out2 = textEncoder2!.Forward(ids2, outputHiddenStates: true);
        var pooled = out2.TextEmbeds ?? out2.PooledOutput;
        var states = cat([out1.PenultimateHiddenState, out2.PenultimateHiddenState], -1);
        return (states.to(dtype).to(device).MoveToOuterDisposeScope(), pooled.to(dtype).to(device).MoveToOuterDisposeScope());
    }

    /// <summary>Token ids (1, max_length): truncated and padded as diffusers asks the tokenizer to.</summary>
    private static Tensor Ids(ClipTokenizer tok, string text)
    {
        var ids = tok.Encode(text);
        return tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length], ScalarType.Int64);
    }
}
