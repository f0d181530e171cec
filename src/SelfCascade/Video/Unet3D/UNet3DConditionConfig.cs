using SelfCascade.IO;
using SelfCascade.Models.Blocks;

namespace SelfCascade.Video.Unet3D;

/// <summary>
/// The `config.json` of a diffusers `UNet3DConditionModel` (ModelScope text-to-video). Every problem (unknown block
/// type, a setting diffusers itself rejects, channels the heads or groups do not divide) is reported at once in one
/// <see cref="ConfigException"/>; a folder of another UNet class is named as such.
/// </summary>
public sealed class UNet3DConditionConfig
{
    public const string ClassName = "UNet3DConditionModel";
    public static readonly string[] DownBlockTypes = ["CrossAttnDownBlock3D", "DownBlock3D"];
    public static readonly string[] UpBlockTypes = ["CrossAttnUpBlock3D", "UpBlock3D"];

    public int InChannels { get; init; } = 4;
    public int OutChannels { get; init; } = 4;
    public int? SampleSize { get; init; }
    public required string[] DownBlockTypeNames { get; init; }
    public required string[] UpBlockTypeNames { get; init; }
    public required int[] BlockOutChannels { get; init; }
    /// <summary>Resnets per down block (up blocks have one more).</summary>
    public int LayersPerBlock { get; init; } = 2;
    public int DownsamplePadding { get; init; } = 1;
    public double MidBlockScaleFactor { get; init; } = 1.0;
    public int NormNumGroups { get; init; } = 32;
    public double NormEps { get; init; } = 1e-5;
    public int CrossAttentionDim { get; init; } = 1024;
    /// <summary>
    /// `attention_head_dim`. In UNet3DConditionModel it is passed on as the blocks' `num_attention_heads`, which the
    /// blocks then use as the head width: a block of C channels has C / this heads of this width. `transformer_in`
    /// has 8 heads of this width.
    /// </summary>
    public int AttentionHeadDim { get; init; } = 64;

    public int NumBlocks => BlockOutChannels.Length;
    public int TimeEmbedDim => BlockOutChannels[0] * 4;
    /// <summary>Heads of `transformer_in` (fixed in diffusers).</summary>
    public const int TransformerInHeads = 8;

    public static UNet3DConditionConfig Load(string path) => FromJson(ConfigJson.Load(path));

    public static UNet3DConditionConfig FromJson(ConfigJson c)
    {
        var cls = c.OptionalString("_class_name");
        if (cls is not null && cls != ClassName)
            throw new ConfigException($"{c.Source}: this is a '{cls}' config, not a {ClassName} (ModelScope-style text-to-video UNet)"
                + (cls is "UNet2DConditionModel" or "UNetMotionModel" ? "; an image UNet with a motion adapter is an AnimateDiff model" : ""));
        var down = c.StringList("down_block_types", ["CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"]);
        var up = c.StringList("up_block_types", ["UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"]);
        var channels = c.IntList("block_out_channels", [320, 640, 1280, 1280], min: 1);
        int n = channels.Length;
        if (n == 0) c.Problem("'block_out_channels' is empty");
        if (down.Length != n) c.Problem($"'down_block_types' has {down.Length} entries, 'block_out_channels' {n}");
        if (up.Length != n) c.Problem($"'up_block_types' has {up.Length} entries, 'block_out_channels' {n}");
        foreach (var t in down.Where(t => !DownBlockTypes.Contains(t))) c.Problem($"unsupported down block type '{t}' (supported: {string.Join(", ", DownBlockTypes)})");
        foreach (var t in up.Where(t => !UpBlockTypes.Contains(t))) c.Problem($"unsupported up block type '{t}' (supported: {string.Join(", ", UpBlockTypes)})");

        if (!c.Has("norm_num_groups") && c.Root.TryGetProperty("norm_num_groups", out _))
            c.Problem("'norm_num_groups' = null is not supported (the temporal layers need group norms)");
        int groups = c.Int("norm_num_groups", 32, min: 1);
        if (c.Has("attention_head_dim") && !c.IsScalar("attention_head_dim"))
            c.Problem("'attention_head_dim' must be one integer (a per-block list breaks transformer_in in diffusers too)");
        int headDim = c.IsScalar("attention_head_dim") || !c.Has("attention_head_dim") ? c.Int("attention_head_dim", 64, min: 1) : 64;
        foreach (var ch in channels)
        {
            if (ch % groups != 0) c.Problem($"block_out_channels entry {ch} is not divisible by norm_num_groups {groups}");
            if (ch % headDim != 0) c.Problem($"block_out_channels entry {ch} is not divisible by attention_head_dim {headDim}");
        }
        if (c.Has("layers_per_block") && !c.IsScalar("layers_per_block")) c.Problem("'layers_per_block' must be one integer");
        if (c.Has("cross_attention_dim") && !c.IsScalar("cross_attention_dim")) c.Problem("'cross_attention_dim' must be one integer");
        foreach (var key in new[] { "num_attention_heads", "time_cond_proj_dim" })
            if (c.Has(key)) c.Problem($"'{key}' = {c.Root.GetProperty(key).GetRawText()} is not supported (only null, as in diffusers)");
        var act = c.String("act_fn", "silu");
        if (!Activation.Supported.Contains(act)) c.Problem($"unsupported act_fn '{act}' (supported: {string.Join(", ", Activation.Supported)})");

        var config = new UNet3DConditionConfig
        {
            InChannels = c.Int("in_channels", 4, min: 1),
            OutChannels = c.Int("out_channels", 4, min: 1),
            SampleSize = c.IsScalar("sample_size") ? c.OptionalInt("sample_size") : null,
            DownBlockTypeNames = down,
            UpBlockTypeNames = up,
            BlockOutChannels = channels,
            LayersPerBlock = c.IsScalar("layers_per_block") || !c.Has("layers_per_block") ? c.Int("layers_per_block", 2, min: 1) : 2,
            DownsamplePadding = c.Int("downsample_padding", 1, min: 0),
            MidBlockScaleFactor = c.Double("mid_block_scale_factor", 1.0),
            NormNumGroups = groups,
            NormEps = c.Double("norm_eps", 1e-5, min: 0),
            CrossAttentionDim = c.IsScalar("cross_attention_dim") || !c.Has("cross_attention_dim") ? c.Int("cross_attention_dim", 1024, min: 1) : 1024,
            AttentionHeadDim = headDim,
        };
        c.ThrowIfInvalid();
        return config;
    }
}
