using System.Text.RegularExpressions;
using SelfCascade.Models.Unet;

namespace SelfCascade.Checkpoints.SingleFile.KeyMaps;

/// <summary>
/// UNet names, diffusers -> LDM (<c>model.diffusion_model.*</c>): diffusers v0.28.2's
/// <c>convert_diffusers_to_original_stable_diffusion.py</c> / <c>_sdxl.py</c> tables and
/// <c>single_file_utils.convert_ldm_unet_checkpoint</c>, with the block numbering computed from the config (the
/// scripts hard-code 4 blocks of 2 resnets). LDM numbers the encoder's modules as one flat <c>input_blocks</c> list
/// (conv_in, then per block its resnets [+ attention] and a downsampler), the decoder's as <c>output_blocks</c> (per up
/// block its resnets [+ attention], the upsampler after the last one: index 1, or 2 behind an attention).
/// </summary>
public sealed partial class UnetKeyRule(UNet2DConditionConfig config) : IOriginalKeyRule
{
    private static readonly Dictionary<string, string> Fixed = new(StringComparer.Ordinal)
    {
        ["time_embedding.linear_1.weight"] = "time_embed.0.weight", ["time_embedding.linear_1.bias"] = "time_embed.0.bias",
        ["time_embedding.linear_2.weight"] = "time_embed.2.weight", ["time_embedding.linear_2.bias"] = "time_embed.2.bias",
        ["conv_in.weight"] = "input_blocks.0.0.weight", ["conv_in.bias"] = "input_blocks.0.0.bias",
        ["conv_norm_out.weight"] = "out.0.weight", ["conv_norm_out.bias"] = "out.0.bias",
        ["conv_out.weight"] = "out.2.weight", ["conv_out.bias"] = "out.2.bias",
        // SDXL's text_time embedding
        ["add_embedding.linear_1.weight"] = "label_emb.0.0.weight", ["add_embedding.linear_1.bias"] = "label_emb.0.0.bias",
        ["add_embedding.linear_2.weight"] = "label_emb.0.2.weight", ["add_embedding.linear_2.bias"] = "label_emb.0.2.bias",
    };

    private static readonly Dictionary<string, string> Resnet = new(StringComparer.Ordinal)
    {
        ["norm1"] = "in_layers.0", ["conv1"] = "in_layers.2", ["norm2"] = "out_layers.0", ["conv2"] = "out_layers.3",
        ["time_emb_proj"] = "emb_layers.1", ["conv_shortcut"] = "skip_connection",
    };

    private readonly int _n = config.NumBlocks;

    public bool IsIgnorable(string originalKey) => false;

    public KeyMapping? Map(string name)
    {
        if (Fixed.TryGetValue(name, out var f)) return new KeyMapping(name, f);
        Match m;
        if ((m = DownResnet().Match(name)).Success)
            return Res(name, $"input_blocks.{InputIndex(I(m, 1), I(m, 2))}.0.", m.Groups[3].Value);
        if ((m = DownAttention().Match(name)).Success)
            return new KeyMapping(name, $"input_blocks.{InputIndex(I(m, 1), I(m, 2))}.1.{m.Groups[3].Value}");
        if ((m = Downsampler().Match(name)).Success)
            return new KeyMapping(name, $"input_blocks.{InputIndex(I(m, 1), config.LayersPerBlock[I(m, 1)])}.0.op.{m.Groups[2].Value}");
        if ((m = UpResnet().Match(name)).Success)
            return Res(name, $"output_blocks.{OutputIndex(I(m, 1), I(m, 2))}.0.", m.Groups[3].Value);
        if ((m = UpAttention().Match(name)).Success)
            return new KeyMapping(name, $"output_blocks.{OutputIndex(I(m, 1), I(m, 2))}.1.{m.Groups[3].Value}");
        if ((m = Upsampler().Match(name)).Success)
        {
            int i = I(m, 1);
            bool attn = i < _n && config.UpBlockTypeNames[i].StartsWith("CrossAttn", StringComparison.Ordinal);
            return new KeyMapping(name, $"output_blocks.{OutputIndex(i, UpLayers(i) - 1)}.{(attn ? 2 : 1)}.{m.Groups[2].Value}");
        }
        if ((m = MidResnet().Match(name)).Success) return Res(name, $"middle_block.{2 * I(m, 1)}.", m.Groups[2].Value);
        if ((m = MidAttention().Match(name)).Success) return new KeyMapping(name, $"middle_block.1.{m.Groups[1].Value}");
        return null;
    }

    private static KeyMapping Res(string name, string prefix, string rest)
    {
        int dot = rest.IndexOf('.');
        var head = dot < 0 ? rest : rest[..dot];
        var tail = dot < 0 ? "" : rest[dot..];
        return new KeyMapping(name, prefix + (Resnet.TryGetValue(head, out var r) ? r : head) + tail);
    }

    private static int I(Match m, int g) => int.Parse(m.Groups[g].Value, System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>input_blocks index of down block i's j-th module (j = layers_per_block: its downsampler).</summary>
    private int InputIndex(int i, int j)
    {
        int idx = 1;
        for (int k = 0; k < i && k < _n; k++) idx += config.LayersPerBlock[k] + 1;
        return idx + j;
    }

    /// <summary>Resnets of up block i: one more than the mirrored down block (diffusers' reversed layers_per_block + 1).</summary>
    private int UpLayers(int i) => i < _n ? config.LayersPerBlock[_n - 1 - i] + 1 : 0;

    private int OutputIndex(int i, int j)
    {
        int idx = 0;
        for (int k = 0; k < i; k++) idx += UpLayers(k);
        return idx + j;
    }

    [GeneratedRegex(@"^down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$")] private static partial Regex DownResnet();
    [GeneratedRegex(@"^down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)$")] private static partial Regex DownAttention();
    [GeneratedRegex(@"^down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)$")] private static partial Regex Downsampler();
    [GeneratedRegex(@"^up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$")] private static partial Regex UpResnet();
    [GeneratedRegex(@"^up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)$")] private static partial Regex UpAttention();
    [GeneratedRegex(@"^up_blocks\.(\d+)\.upsamplers\.0\.(.+)$")] private static partial Regex Upsampler();
    [GeneratedRegex(@"^mid_block\.resnets\.(\d+)\.(.+)$")] private static partial Regex MidResnet();
    [GeneratedRegex(@"^mid_block\.attentions\.0\.(.+)$")] private static partial Regex MidAttention();
}
