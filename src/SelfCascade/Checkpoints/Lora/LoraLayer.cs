using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Checkpoints.Lora;

/// <summary>The LoRA file layouts that are read.</summary>
public enum LoraFormat
{
    /// <summary>kohya / A1111: lora_unet_*, lora_te_*, lora_te1_*/lora_te2_*; .lora_down/.lora_up/.alpha.</summary>
    Kohya,
    /// <summary>diffusers / PEFT: {unet,text_encoder,text_encoder_2}.{module}.lora_A/lora_B.weight.</summary>
    Peft,
    /// <summary>Older diffusers: …processor.to_q_lora.down.weight, …lora_linear_layer.up.weight, …lora.down.weight.</summary>
    DiffusersLegacy,
}

/// <summary>
/// One low-rank update: <c>W += scale * alpha / rank * up @ down</c> (conv weights: up and down flattened to matrices,
/// the product reshaped to W's shape, so LoCon's 3x3 down with 1x1 up works). Tensors are fp32 on the CPU.
/// </summary>
public sealed class LoraLayer : IDisposable
{
    /// <summary>The layer's name stem in the file (e.g. lora_unet_down_blocks_0_attentions_0_proj_in).</summary>
    public required string FileKey { get; init; }
    /// <summary>unet, text_encoder or text_encoder_2.</summary>
    public required string Component { get; init; }
    /// <summary>The module path in diffusers naming when the file spells it with dots (PEFT, diffusers); null for kohya.</summary>
    public string? ModulePath { get; init; }
    /// <summary>kohya's flattened name (module path with '.' replaced by '_'), without the lora_unet_/lora_te_ prefix.</summary>
    public string? FlatName { get; init; }
    public required Tensor Down { get; init; }
    public required Tensor Up { get; init; }
    /// <summary>The file's alpha, or null (then alpha = rank: no rescaling).</summary>
    public double? Alpha { get; init; }

    public long Rank => Down.shape[0];
    public double Multiplier => (Alpha ?? Rank) / Rank;

    /// <summary>The layer's keys in the file (for reports).</summary>
    public IReadOnlyList<string> Keys { get; init; } = [];

    public void Dispose() { Down.Dispose(); Up.Dispose(); }
}
