using SelfCascade.IO;
using SelfCascade.Models.Blocks;

namespace SelfCascade.Models.Unet;

/// <summary>
/// The `config.json` of a diffusers `UNet2DConditionModel`, resolved to per-block values. Only the keys that shape
/// the SD 1.x / 2.x / SDXL UNets are honoured; any value that would select a feature not implemented here (class
/// embeddings, dual cross-attention, other block types...) is reported as a problem instead of being ignored.
/// </summary>
public sealed class UNet2DConditionConfig
{
    public static readonly string[] DownBlockTypes = ["CrossAttnDownBlock2D", "DownBlock2D"];
    public static readonly string[] UpBlockTypes = ["CrossAttnUpBlock2D", "UpBlock2D"];
    public const string MidBlockType = "UNetMidBlock2DCrossAttn";

    public int InChannels { get; init; } = 4;
    public int OutChannels { get; init; } = 4;
    public int? SampleSize { get; init; }
    public bool CenterInputSample { get; init; }
    public bool FlipSinToCos { get; init; } = true;
    public double FreqShift { get; init; }
    public required string[] DownBlockTypeNames { get; init; }
    public required string[] UpBlockTypeNames { get; init; }
    public required int[] BlockOutChannels { get; init; }
    /// <summary>Resnets per down block (up blocks have one more).</summary>
    public required int[] LayersPerBlock { get; init; }
    public int DownsamplePadding { get; init; } = 1;
    public double MidBlockScaleFactor { get; init; } = 1.0;
    public double Dropout { get; init; }
    public int NormNumGroups { get; init; } = 32;
    public double NormEps { get; init; } = 1e-5;
    /// <summary>Per down block (reversed for the up blocks, the last entry for the mid block).</summary>
    public required int[] CrossAttentionDim { get; init; }
    public required int[] TransformerLayersPerBlock { get; init; }
    /// <summary>
    /// Heads per down block: `num_attention_heads`, or, when that is absent, `attention_head_dim`, which in
    /// diffusers' legacy naming IS the number of heads (unet_2d_condition.py). Head width = channels / heads.
    /// </summary>
    public required int[] NumAttentionHeads { get; init; }
    public bool UseLinearProjection { get; init; }
    public bool UpcastAttention { get; init; }
    public int ConvInKernel { get; init; } = 3;
    public int ConvOutKernel { get; init; } = 3;
    public int? TimeEmbeddingDim { get; init; }
    /// <summary>null or "text_time" (SDXL).</summary>
    public string? AdditionEmbedType { get; init; }
    public int? AdditionTimeEmbedDim { get; init; }
    public int? ProjectionClassEmbeddingsInputDim { get; init; }

    public int NumBlocks => BlockOutChannels.Length;
    /// <summary>Width of the time embedding `emb` (`time_embedding_dim` or 4 x block_out_channels[0]).</summary>
    public int TimeEmbedDim => TimeEmbeddingDim ?? BlockOutChannels[0] * 4;
    public bool HasTextTimeEmbedding => AdditionEmbedType == "text_time";

    public static UNet2DConditionConfig Load(string path) => FromJson(ConfigJson.Load(path));

    /// <summary>Reads and validates a config; every problem is reported at once in one <see cref="ConfigException"/>.</summary>
    public static UNet2DConditionConfig FromJson(ConfigJson c)
    {
        var down = c.StringList("down_block_types");
        var up = c.StringList("up_block_types");
        var channels = c.IntList("block_out_channels", min: 1);
        int n = channels.Length;
        if (n == 0) c.Problem("'block_out_channels' is empty");
        if (down.Length != n) c.Problem($"'down_block_types' has {down.Length} entries, 'block_out_channels' {n}");
        if (up.Length != n) c.Problem($"'up_block_types' has {up.Length} entries, 'block_out_channels' {n}");
        foreach (var t in down.Where(t => !DownBlockTypes.Contains(t))) c.Problem($"unsupported down block type '{t}' (supported: {string.Join(", ", DownBlockTypes)})");
        foreach (var t in up.Where(t => !UpBlockTypes.Contains(t))) c.Problem($"unsupported up block type '{t}' (supported: {string.Join(", ", UpBlockTypes)})");

        int groups = c.Int("norm_num_groups", 32, min: 1);
        foreach (var ch in channels.Where(ch => ch % groups != 0))
            c.Problem($"block_out_channels entry {ch} is not divisible by norm_num_groups {groups}");

        int[] heads;
        if (c.Has("num_attention_heads")) heads = c.IntList("num_attention_heads", broadcastTo: n, min: 1);
        else heads = c.IntList("attention_head_dim", fallback: Repeat(8, n), broadcastTo: n, min: 1);

        var addition = c.OptionalString("addition_embed_type");
        if (c.Has("addition_embed_type") && addition is null) c.Problem("'addition_embed_type' must be a string or null");
        int? addTimeDim = null, projDim = null;
        if (addition is not null && addition != "text_time")
            c.Problem($"unsupported addition_embed_type '{addition}' (supported: text_time)");
        else if (addition == "text_time")
        {
            addTimeDim = c.Int("addition_time_embed_dim", min: 1);
            projDim = c.Int("projection_class_embeddings_input_dim", min: 1);
        }

        var midType = c.OptionalString("mid_block_type") ?? MidBlockType;
        if (midType != MidBlockType) c.Problem($"unsupported mid_block_type '{midType}' (supported: {MidBlockType})");
        var act = c.String("act_fn", "silu");
        if (!Activation.Supported.Contains(act)) c.Problem($"unsupported act_fn '{act}' (supported: {string.Join(", ", Activation.Supported)})");
        var timeType = c.String("time_embedding_type", "positional");
        if (timeType != "positional") c.Problem($"unsupported time_embedding_type '{timeType}' (supported: positional)");
        RequireDefault(c, "resnet_time_scale_shift", "default");
        RequireDefault(c, "attention_type", "default");
        foreach (var key in new[] { "class_embed_type", "num_class_embeds", "encoder_hid_dim", "encoder_hid_dim_type",
                     "time_embedding_act_fn", "timestep_post_act", "time_cond_proj_dim", "cross_attention_norm",
                     "reverse_transformer_layers_per_block" })
            if (c.Has(key)) c.Problem($"'{key}' = {c.Root.GetProperty(key).GetRawText()} is not supported (only null)");
        foreach (var key in new[] { "dual_cross_attention", "class_embeddings_concat", "resnet_skip_time_act", "mid_block_only_cross_attention" })
            if (c.Has(key) && c.Bool(key, false)) c.Problem($"'{key}' = true is not supported");
        if (c.Has("only_cross_attention"))
        {
            bool any = c.Root.GetProperty("only_cross_attention").ValueKind == System.Text.Json.JsonValueKind.Array
                ? c.Root.GetProperty("only_cross_attention").EnumerateArray().Any(e => e.ValueKind == System.Text.Json.JsonValueKind.True)
                : c.Bool("only_cross_attention", false);
            if (any) c.Problem("'only_cross_attention' = true is not supported");
        }
        if (c.Has("transformer_layers_per_block") && c.Root.GetProperty("transformer_layers_per_block").ValueKind == System.Text.Json.JsonValueKind.Array
            && c.Root.GetProperty("transformer_layers_per_block").EnumerateArray().Any(e => e.ValueKind == System.Text.Json.JsonValueKind.Array))
            c.Problem("'transformer_layers_per_block' as a list of lists is not supported");

        int convIn = c.Int("conv_in_kernel", 3, min: 1), convOut = c.Int("conv_out_kernel", 3, min: 1);
        if (convIn % 2 == 0) c.Problem($"'conv_in_kernel' = {convIn} must be odd");
        if (convOut % 2 == 0) c.Problem($"'conv_out_kernel' = {convOut} must be odd");

        var config = new UNet2DConditionConfig
        {
            InChannels = c.Int("in_channels", 4, min: 1),
            OutChannels = c.Int("out_channels", 4, min: 1),
            SampleSize = c.IsScalar("sample_size") ? c.OptionalInt("sample_size") : null,
            CenterInputSample = c.Bool("center_input_sample", false),
            FlipSinToCos = c.Bool("flip_sin_to_cos", true),
            FreqShift = c.Double("freq_shift", 0),
            DownBlockTypeNames = down,
            UpBlockTypeNames = up,
            BlockOutChannels = channels,
            LayersPerBlock = c.IntList("layers_per_block", Repeat(2, n), broadcastTo: n, min: 1),
            DownsamplePadding = c.Int("downsample_padding", 1, min: 0),
            MidBlockScaleFactor = c.Double("mid_block_scale_factor", 1.0),
            Dropout = c.Double("dropout", 0.0, min: 0, max: 1),
            NormNumGroups = groups,
            NormEps = c.Double("norm_eps", 1e-5, min: 0),
            CrossAttentionDim = c.IntList("cross_attention_dim", Repeat(1280, n), broadcastTo: n, min: 1),
            TransformerLayersPerBlock = c.IntList("transformer_layers_per_block", Repeat(1, n), broadcastTo: n, min: 1),
            NumAttentionHeads = heads,
            UseLinearProjection = c.Bool("use_linear_projection", false),
            UpcastAttention = c.Bool("upcast_attention", false),
            ConvInKernel = convIn,
            ConvOutKernel = convOut,
            TimeEmbeddingDim = c.Has("time_embedding_dim") ? c.Int("time_embedding_dim", min: 1) : null,
            AdditionEmbedType = addition,
            AdditionTimeEmbedDim = addTimeDim,
            ProjectionClassEmbeddingsInputDim = projDim,
        };
        c.ThrowIfInvalid();
        return config;
    }

    private static int[] Repeat(int value, int n) => Enumerable.Repeat(value, n).ToArray();

    private static void RequireDefault(ConfigJson c, string key, string expected)
    {
        var v = c.String(key, expected);
        if (v != expected) c.Problem($"unsupported {key} '{v}' (supported: {expected})");
    }
}
