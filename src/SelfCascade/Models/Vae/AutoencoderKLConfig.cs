using SelfCascade.IO;
using SelfCascade.Models.Blocks;

namespace SelfCascade.Models.Vae;

/// <summary>The `config.json` of a diffusers `AutoencoderKL` (SD 1.x / 2.x / SDXL VAEs), validated.</summary>
public sealed class AutoencoderKLConfig
{
    public const string DownBlockType = "DownEncoderBlock2D";
    public const string UpBlockType = "UpDecoderBlock2D";

    public int InChannels { get; init; } = 3;
    public int OutChannels { get; init; } = 3;
    public required int[] BlockOutChannels { get; init; }
    public int LayersPerBlock { get; init; } = 1;
    public int LatentChannels { get; init; } = 4;
    public int NormNumGroups { get; init; } = 32;
    public int? SampleSize { get; init; }
    /// <summary>`scaling_factor`: latents are multiplied by it after encoding, divided before decoding (by the pipeline).</summary>
    public double ScalingFactor { get; init; } = 0.18215;
    /// <summary>`shift_factor`: subtracted before scaling (null for the SD VAEs).</summary>
    public double? ShiftFactor { get; init; }
    /// <summary>`force_upcast`: diffusers pipelines run this VAE in fp32 (SDXL's VAE overflows in fp16).</summary>
    public bool ForceUpcast { get; init; } = true;
    public bool UseQuantConv { get; init; } = true;
    public bool UsePostQuantConv { get; init; } = true;
    public bool MidBlockAddAttention { get; init; } = true;

    public int NumBlocks => BlockOutChannels.Length;

    /// <summary>Pixels per latent pixel: 2^(blocks - 1), diffusers' pipeline `vae_scale_factor`.</summary>
    public int ScaleFactor => 1 << (NumBlocks - 1);

    public static AutoencoderKLConfig Load(string path) => FromJson(ConfigJson.Load(path));

    public static AutoencoderKLConfig FromJson(ConfigJson c)
    {
        var channels = c.IntList("block_out_channels", [64], min: 1);
        int n = channels.Length;
        if (n == 0) c.Problem("'block_out_channels' is empty");
        var down = c.StringList("down_block_types", [DownBlockType]);
        var up = c.StringList("up_block_types", [UpBlockType]);
        if (down.Length != n) c.Problem($"'down_block_types' has {down.Length} entries, 'block_out_channels' {n}");
        if (up.Length != n) c.Problem($"'up_block_types' has {up.Length} entries, 'block_out_channels' {n}");
        foreach (var t in down.Where(t => t != DownBlockType)) c.Problem($"unsupported down block type '{t}' (supported: {DownBlockType})");
        foreach (var t in up.Where(t => t != UpBlockType)) c.Problem($"unsupported up block type '{t}' (supported: {UpBlockType})");
        int groups = c.Int("norm_num_groups", 32, min: 1);
        foreach (var ch in channels.Where(ch => ch % groups != 0))
            c.Problem($"block_out_channels entry {ch} is not divisible by norm_num_groups {groups}");
        var act = c.String("act_fn", "silu");
        if (!Activation.Supported.Contains(act)) c.Problem($"unsupported act_fn '{act}' (supported: {string.Join(", ", Activation.Supported)})");

        var config = new AutoencoderKLConfig
        {
            InChannels = c.Int("in_channels", 3, min: 1),
            OutChannels = c.Int("out_channels", 3, min: 1),
            BlockOutChannels = channels,
            LayersPerBlock = c.Int("layers_per_block", 1, min: 1),
            LatentChannels = c.Int("latent_channels", 4, min: 1),
            NormNumGroups = groups,
            SampleSize = c.IsScalar("sample_size") ? c.OptionalInt("sample_size") : null,
            ScalingFactor = c.Double("scaling_factor", 0.18215),
            ShiftFactor = c.OptionalDouble("shift_factor"),
            ForceUpcast = c.Bool("force_upcast", true),
            UseQuantConv = c.Bool("use_quant_conv", true),
            UsePostQuantConv = c.Bool("use_post_quant_conv", true),
            MidBlockAddAttention = c.Bool("mid_block_add_attention", true),
        };
        c.ThrowIfInvalid();
        return config;
    }
}
