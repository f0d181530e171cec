using System.Text.RegularExpressions;

namespace SelfCascade.Checkpoints.Lora;

/// <summary>
/// kohya names in the original LDM/SGM UNet layout (<c>lora_unet_input_blocks_4_1_proj_in</c>, used by sd-scripts for
/// SDXL) → our diffusers module paths. The block arithmetic is diffusers' (<c>_maybe_map_sgm_blocks_to_diffusers</c> and
/// the single-file conversion): input block i ≥ 1 is down block (i-1)/(L+1), layer (i-1)%(L+1) (the last one is the
/// downsampler), output block i is up block i/(L+1), layer i%(L+1); inner index 0 is the resnet, 1 the attention (or
/// the upsampler of a block without attention), 2 the upsampler. Resnet layers: in_layers_2 = conv1,
/// out_layers_3 = conv2, emb_layers_1 = time_emb_proj, skip_connection = conv_shortcut. L (layers per block) and which
/// blocks have attention are read from the model's own module names.
/// </summary>
public static class LdmUnetNames
{
    private static readonly Regex Input = new(@"^input_blocks_(\d+)_(\d+)_(.+)$", RegexOptions.CultureInvariant);
    private static readonly Regex Middle = new(@"^middle_block_(\d+)_(.+)$", RegexOptions.CultureInvariant);
    private static readonly Regex Output = new(@"^output_blocks_(\d+)_(\d+)_(.+)$", RegexOptions.CultureInvariant);

    private static readonly Dictionary<string, string> ResnetParts = new(StringComparer.Ordinal)
    {
        ["in_layers_2"] = "conv1", ["out_layers_3"] = "conv2", ["emb_layers_1"] = "time_emb_proj", ["skip_connection"] = "conv_shortcut",
    };

    private static readonly Dictionary<string, string> TopLevel = new(StringComparer.Ordinal)
    {
        ["input_blocks_0_0"] = "conv_in", ["out_2"] = "conv_out", ["time_embed_0"] = "time_embedding_linear_1",
        ["time_embed_2"] = "time_embedding_linear_2", ["label_emb_0_0"] = "add_embedding_linear_1", ["label_emb_0_2"] = "add_embedding_linear_2",
    };

    /// <summary>The module path for an LDM-layout flat name, or null. <paramref name="flatIndex"/>: flat name → module path.</summary>
    public static string? TryResolve(string component, string flat, IReadOnlyDictionary<string, string?> flatIndex)
    {
        if (component != "unet") return null;
        var diffusersFlat = ToDiffusersFlat(flat, flatIndex);
        return diffusersFlat != null && flatIndex.TryGetValue(diffusersFlat, out var module) ? module : null;
    }

    internal static string? ToDiffusersFlat(string flat, IReadOnlyDictionary<string, string?> flatIndex)
    {
        if (TopLevel.TryGetValue(flat, out var top)) return top;
        int layers = Enumerable.Range(0, 16).Count(j => flatIndex.Keys.Any(k => k.StartsWith($"down_blocks_0_resnets_{j}_", StringComparison.Ordinal)));
        if (layers == 0) return null;
        Match m;
        if ((m = Input.Match(flat)).Success)
        {
            int i = int.Parse(m.Groups[1].Value), inner = int.Parse(m.Groups[2].Value);
            if (i == 0) return null;
            int b = (i - 1) / (layers + 1), j = (i - 1) % (layers + 1);
            var rest = m.Groups[3].Value;
            if (j == layers) return rest == "op" ? $"down_blocks_{b}_downsamplers_0_conv" : null;
            return inner == 0 ? Resnet($"down_blocks_{b}_resnets_{j}", rest) : $"down_blocks_{b}_attentions_{j}_{rest}";
        }
        if ((m = Middle.Match(flat)).Success)
        {
            var rest = m.Groups[2].Value;
            return m.Groups[1].Value switch
            {
                "0" => Resnet("mid_block_resnets_0", rest),
                "1" => $"mid_block_attentions_0_{rest}",
                "2" => Resnet("mid_block_resnets_1", rest),
                _ => null,
            };
        }
        if ((m = Output.Match(flat)).Success)
        {
            int i = int.Parse(m.Groups[1].Value), inner = int.Parse(m.Groups[2].Value);
            int b = i / (layers + 1), j = i % (layers + 1);
            var rest = m.Groups[3].Value;
            bool hasAttention = flatIndex.Keys.Any(k => k.StartsWith($"up_blocks_{b}_attentions_", StringComparison.Ordinal));
            return inner switch
            {
                0 => Resnet($"up_blocks_{b}_resnets_{j}", rest),
                1 when hasAttention => $"up_blocks_{b}_attentions_{j}_{rest}",
                1 or 2 when rest == "conv" => $"up_blocks_{b}_upsamplers_0_conv",
                _ => null,
            };
        }
        return null;
    }

    private static string? Resnet(string prefix, string rest) =>
        ResnetParts.TryGetValue(rest, out var part) ? $"{prefix}_{part}" : null;
}
