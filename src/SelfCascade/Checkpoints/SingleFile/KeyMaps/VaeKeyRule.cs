using System.Text.RegularExpressions;
using SelfCascade.Models.Vae;

namespace SelfCascade.Checkpoints.SingleFile.KeyMaps;

/// <summary>
/// VAE names, diffusers -> LDM (<c>first_stage_model.*</c>), as diffusers v0.28.2's conversion scripts
/// (<c>vae_conversion_map</c>, <c>vae_conversion_map_attn</c>) and <c>single_file_utils.convert_ldm_vae_checkpoint</c>:
/// encoder <c>down.{i}.block.{j}</c> / <c>down.{i}.downsample</c>; the decoder's up blocks numbered in reverse
/// (<c>up_blocks.{i}</c> = <c>up.{n-1-i}</c>); <c>mid.block_{1,2}</c>, <c>mid.attn_1</c> whose q/k/v/proj_out are 1x1
/// convs ([C, C, 1, 1]) where diffusers has linears; <c>nin_shortcut</c>, <c>norm_out</c>. Block counts from the config.
/// </summary>
public sealed partial class VaeKeyRule(AutoencoderKLConfig config) : IOriginalKeyRule
{
    private static readonly Dictionary<string, string> Attention = new(StringComparer.Ordinal)
    {
        ["group_norm"] = "norm", ["to_q"] = "q", ["to_k"] = "k", ["to_v"] = "v", ["to_out.0"] = "proj_out",
    };

    public bool IsIgnorable(string originalKey) => false;

    public KeyMapping? Map(string name)
    {
        int n = config.NumBlocks;
        Match m;
        if ((m = Simple().Match(name)).Success)
        {
            var part = m.Groups[2].Value == "conv_norm_out" ? "norm_out" : m.Groups[2].Value;
            return new KeyMapping(name, $"{m.Groups[1].Value}.{part}.{m.Groups[3].Value}");
        }
        if (name.StartsWith("quant_conv.", StringComparison.Ordinal) || name.StartsWith("post_quant_conv.", StringComparison.Ordinal))
            return new KeyMapping(name, name);
        if ((m = DownResnet().Match(name)).Success)
            return new KeyMapping(name, $"encoder.down.{m.Groups[1].Value}.block.{m.Groups[2].Value}.{Shortcut(m.Groups[3].Value)}");
        if ((m = Downsampler().Match(name)).Success)
            return new KeyMapping(name, $"encoder.down.{m.Groups[1].Value}.downsample.{m.Groups[2].Value}");
        if ((m = UpResnet().Match(name)).Success)
            return new KeyMapping(name, $"decoder.up.{n - 1 - Idx(m)}.block.{m.Groups[2].Value}.{Shortcut(m.Groups[3].Value)}");
        if ((m = Upsampler().Match(name)).Success)
            return new KeyMapping(name, $"decoder.up.{n - 1 - Idx(m)}.upsample.{m.Groups[2].Value}");
        if ((m = MidResnet().Match(name)).Success)
            return new KeyMapping(name, $"{m.Groups[1].Value}.mid.block_{int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) + 1}.{Shortcut(m.Groups[3].Value)}");
        if ((m = MidAttention().Match(name)).Success)
        {
            var (part, leaf) = (m.Groups[2].Value, m.Groups[3].Value);
            if (!Attention.TryGetValue(part, out var orig)) return null;
            // q/k/v/proj_out weights are 1x1 convs in the original; norm and biases keep their shape.
            var transform = orig != "norm" && leaf == "weight" ? TensorTransform.Reshape : TensorTransform.Identity;
            return new KeyMapping(name, $"{m.Groups[1].Value}.mid.attn_1.{orig}.{leaf}", transform);
        }
        return null;
    }

    private static int Idx(Match m) => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    private static string Shortcut(string rest) => rest.StartsWith("conv_shortcut.", StringComparison.Ordinal) ? "nin_shortcut" + rest["conv_shortcut".Length..] : rest;

    [GeneratedRegex(@"^(encoder|decoder)\.(conv_in|conv_out|conv_norm_out)\.(weight|bias)$")] private static partial Regex Simple();
    [GeneratedRegex(@"^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$")] private static partial Regex DownResnet();
    [GeneratedRegex(@"^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.(.+)$")] private static partial Regex Downsampler();
    [GeneratedRegex(@"^decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$")] private static partial Regex UpResnet();
    [GeneratedRegex(@"^decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.+)$")] private static partial Regex Upsampler();
    [GeneratedRegex(@"^(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)$")] private static partial Regex MidResnet();
    [GeneratedRegex(@"^(encoder|decoder)\.mid_block\.attentions\.0\.(group_norm|to_q|to_k|to_v|to_out\.0)\.(weight|bias)$")] private static partial Regex MidAttention();
}
