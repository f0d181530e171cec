namespace SelfCascade.Cascade.Upsamplers;

/// <summary>Which time-aware feature upsampler design a set uses (docs/UPSAMPLERS.md).</summary>
public enum UpsamplerVariant
{
    /// <summary>As released: two full-width LDM ResBlocks per point (nearest 2x-style upsampling in the first), 145,460,800 parameters for SD 1.5/2.1/SDXL (145,457,280 without the gates, as released).</summary>
    Full,
    /// <summary>Small: bilinear resize, depthwise 3x3 conv, time-conditioned per-channel gain and bias; 75,524 parameters for SD 1.5/2.1/SDXL.</summary>
    Lite,
}

public static class UpsamplerVariants
{
    public static string Name(UpsamplerVariant v) => v switch
    {
        UpsamplerVariant.Full => "full",
        UpsamplerVariant.Lite => "lite",
        _ => throw new ArgumentOutOfRangeException(nameof(v)),
    };

    public static UpsamplerVariant Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "full" => UpsamplerVariant.Full,
        "lite" => UpsamplerVariant.Lite,
        _ => throw new ArgumentException($"unknown upsampler variant '{name}' (expected 'full' or 'lite')", nameof(name)),
    };
}
