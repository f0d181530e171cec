namespace SelfCascade.Models.Blocks;

/// <summary>The activation names diffusers' configs use that these networks support (`act_fn`).</summary>
public static class Activation
{
    /// <summary>Only SiLU (`silu`/`swish`) is used by the SD 1.x/2.x/SDXL UNets and VAEs.</summary>
    public static readonly string[] Supported = ["silu", "swish"];
}
