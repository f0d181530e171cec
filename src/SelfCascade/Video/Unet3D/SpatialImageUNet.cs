using System.Text.Json.Nodes;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using SelfCascade.IO;
using SelfCascade.Models;
using SelfCascade.Models.Unet;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Video.Unet3D;

/// <summary>
/// The spatial half of a <see cref="UNet3DConditionModel"/> as an image <see cref="UNet2DConditionModel"/>: the same
/// conv_in, time embedding, resnets, spatial transformers, down/upsamplers and conv_out under the same state-dict
/// names, without the temporal convolutions, the temporal transformers and transformer_in. With the temporal layers
/// at zero the UNet3D is exactly this network run on every frame (UNet3DStructureTests).
/// <para>Why it exists: the feature upsamplers work per frame on an image UNet's encoder features (the low-res
/// branch), as in AnimateDiff, where the motion modules are left out of that branch; for a UNet3D this network plays
/// the image UNet's part, both in the tuned video cascade and when training upsamplers for a UNet3D model.</para>
/// </summary>
public static class SpatialImageUNet
{
    // Which UNet3D each copy was made from: the UNet3D accepts upsamplers only when their low-res branch is its own
    // spatial half (another UNet of the same shape would run silently with the wrong weights).
    private static readonly ConditionalWeakTable<UNet2DConditionModel, UNet3DConditionModel> Sources = new();

    /// <summary>Whether <paramref name="image"/> was made by <see cref="CopyOf"/> from <paramref name="unet"/>.</summary>
    public static bool IsCopyOf(UNet2DConditionModel image, UNet3DConditionModel unet) =>
        Sources.TryGetValue(image, out var source) && ReferenceEquals(source, unet);

    private static readonly Regex TemporalKey = new(@"(^|\.)(temp_convs|temp_attentions|transformer_in)\.", RegexOptions.CultureInvariant);

    /// <summary>Whether a UNet3D state-dict key belongs to a temporal layer (not part of the spatial half).</summary>
    public static bool IsTemporalKey(string key) => TemporalKey.IsMatch(key);

    /// <summary>
    /// The image UNet config of the spatial half: the blocks' 2D kinds, linear transformer projections (as diffusers'
    /// 3D blocks build them), C / attention_head_dim heads of attention_head_dim channels per block (how
    /// UNet3DConditionModel passes its head size on), and the 3D config's channels, norms and sizes.
    /// </summary>
    public static JsonObject ImageConfigJson(UNet3DConditionConfig c)
    {
        static JsonArray Strings(IEnumerable<string> s) => new(s.Select(x => (JsonNode?)JsonValue.Create(x)).ToArray());
        static JsonArray Ints(IEnumerable<int> s) => new(s.Select(x => (JsonNode?)JsonValue.Create(x)).ToArray());
        var json = new JsonObject
        {
            ["_class_name"] = "UNet2DConditionModel",
            ["in_channels"] = c.InChannels,
            ["out_channels"] = c.OutChannels,
            ["block_out_channels"] = Ints(c.BlockOutChannels),
            ["layers_per_block"] = c.LayersPerBlock,
            ["down_block_types"] = Strings(c.DownBlockTypeNames.Select(t => t.Replace("3D", "2D", StringComparison.Ordinal))),
            ["up_block_types"] = Strings(c.UpBlockTypeNames.Select(t => t.Replace("3D", "2D", StringComparison.Ordinal))),
            ["cross_attention_dim"] = c.CrossAttentionDim,
            ["num_attention_heads"] = Ints(c.BlockOutChannels.Select(ch => ch / c.AttentionHeadDim)),
            ["use_linear_projection"] = true,
            ["norm_num_groups"] = c.NormNumGroups,
            ["norm_eps"] = c.NormEps,
            ["downsample_padding"] = c.DownsamplePadding,
            ["mid_block_scale_factor"] = c.MidBlockScaleFactor,
        };
        if (c.SampleSize is int s) json["sample_size"] = s;
        return json;
    }

    public static UNet2DConditionConfig Config(UNet3DConditionConfig c) =>
        UNet2DConditionConfig.FromJson(ConfigJson.Parse(ImageConfigJson(c).ToJsonString(), "spatial half of a UNet3DConditionModel"));

    /// <summary>
    /// A new image UNet holding a copy of <paramref name="unet"/>'s spatial weights, on its device and dtype, in eval
    /// mode. The copy costs the spatial weights' memory once more (most of a UNet3D's); the caller owns it.
    /// </summary>
    public static UNet2DConditionModel CopyOf(UNet3DConditionModel unet)
    {
        var config = Config(unet.Config);
        var copy = ModelConstruction.BuildLoaded(() => new UNet2DConditionModel(config), image =>
        {
            var source = unet.state_dict();
            var problems = new List<string>();
            using var _ = no_grad();
            foreach (var (key, dest) in image.state_dict())
            {
                if (!source.TryGetValue(key, out var t)) problems.Add($"missing {key}");
                else if (!t.shape.SequenceEqual(dest.shape)) problems.Add($"{key}: [{string.Join(",", t.shape)}] vs [{string.Join(",", dest.shape)}]");
                else dest.copy_(t);
            }
            if (problems.Count > 0) // a layout bug, not bad input: the config above is derived from the same 3D config
                throw new InvalidOperationException($"the spatial half does not match the UNet3D: {string.Join("; ", problems.Take(10))}");
        }, unet.Device, unet.DType);
        Sources.AddOrUpdate(copy, unet);
        return copy;
    }

    /// <summary>
    /// Loads only the spatial half from a UNet3D's weights (the temporal tensors are skipped, never read). Anything
    /// else missing, extra or mis-shaped is one <see cref="WeightLoadException"/>.
    /// </summary>
    public static UNet2DConditionModel FromWeights(UNet3DConditionConfig config, IReadOnlyList<ITensorSource> sources,
        Device? device = null, ScalarType? dtype = null)
    {
        var imageConfig = Config(config);
        return ModelConstruction.BuildLoaded(() => new UNet2DConditionModel(imageConfig), image =>
        {
            var report = WeightLoader.Check(image, sources);
            var foreign = report.Unexpected.Where(k => !IsTemporalKey(k)).ToList();
            if (report.Missing.Count > 0 || report.Mismatched.Count > 0 || foreign.Count > 0)
                throw new WeightLoadException(new WeightCheckReport
                {
                    Files = report.Files, Missing = report.Missing, Unexpected = foreign, Mismatched = report.Mismatched,
                    DTypeCounts = report.DTypeCounts,
                });
            WeightLoader.Load(image, sources, strict: false);
        }, device, dtype);
    }
}
