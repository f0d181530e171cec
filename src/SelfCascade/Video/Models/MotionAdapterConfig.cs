using SelfCascade.IO;

namespace SelfCascade.Video.Models;

/// <summary>diffusers `MotionAdapter`'s config.json (AnimateDiff motion modules for an SD 1.x/2.x UNet).</summary>
public sealed class MotionAdapterConfig
{
    public required int[] BlockOutChannels { get; init; }
    /// <summary>Motion modules per down block (up blocks have one more, as their resnets).</summary>
    public int MotionLayersPerBlock { get; init; } = 2;
    public int MotionMidBlockLayersPerBlock { get; init; } = 1;
    public int MotionNumAttentionHeads { get; init; } = 8;
    public int MotionNormNumGroups { get; init; } = 32;
    /// <summary>Length of the sinusoidal frame-position table: the most frames one forward can take.</summary>
    public int MotionMaxSeqLength { get; init; } = 32;
    public bool UseMotionMidBlock { get; init; } = true;

    public static MotionAdapterConfig Load(string path) => FromJson(ConfigJson.Load(path));

    public static MotionAdapterConfig FromJson(ConfigJson c)
    {
        var cls = c.OptionalString("_class_name");
        if (cls is not null && cls != "MotionAdapter")
            c.Problem($"'_class_name' is '{cls}', not a MotionAdapter (AnimateDiff motion modules in diffusers' layout)");
        var channels = c.IntList("block_out_channels", new[] { 320, 640, 1280, 1280 }, min: 1);
        int heads = c.Int("motion_num_attention_heads", 8, min: 1);
        foreach (var ch in channels.Where(ch => ch % heads != 0))
            c.Problem($"block_out_channels entry {ch} is not divisible by motion_num_attention_heads {heads}");
        // PIA / SparseCtrl-style adapters carry their own conv_in: a different network.
        if (c.Has("conv_in_channels"))
            c.Problem($"'conv_in_channels' = {c.Root.GetProperty("conv_in_channels").GetRawText()} is not supported (an adapter with its own conv_in, e.g. PIA)");
        var config = new MotionAdapterConfig
        {
            BlockOutChannels = channels,
            MotionLayersPerBlock = c.Int("motion_layers_per_block", 2, min: 1),
            MotionMidBlockLayersPerBlock = c.Int("motion_mid_block_layers_per_block", 1, min: 1),
            MotionNumAttentionHeads = heads,
            MotionNormNumGroups = c.Int("motion_norm_num_groups", 32, min: 1),
            MotionMaxSeqLength = c.Int("motion_max_seq_length", 32, min: 1),
            UseMotionMidBlock = c.Bool("use_motion_mid_block", true),
        };
        c.ThrowIfInvalid();
        return config;
    }
}
