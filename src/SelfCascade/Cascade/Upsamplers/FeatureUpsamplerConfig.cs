using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SelfCascade.IO;
using SelfCascade.Models.Unet;

namespace SelfCascade.Cascade.Upsamplers;

/// <summary>
/// What a set of upsamplers is (the checkpoint's <c>config.json</c>): variant, injection points and their channel
/// widths, the time-embedding width, the UNet it was made for (family and an architecture fingerprint), the stage
/// scale it was trained for and the training steps.
/// </summary>
public sealed record FeatureUpsamplerConfig
{
    public const int CurrentFormat = 1;
    /// <summary>k, the width of the lite variant's shared time condition.</summary>
    public const int LiteConditionDim = 4;

    public required UpsamplerVariant Variant { get; init; }
    public required IReadOnlyList<InjectionPoint> Points { get; init; }
    /// <summary>Channel width at each point, in <see cref="Points"/> order.</summary>
    public required IReadOnlyList<int> Channels { get; init; }
    public required int TimeEmbedDim { get; init; }
    /// <summary>The lite variant's k (0 for full).</summary>
    public int ConditionDim { get; init; }
    public int NormGroups { get; init; } = 32;
    public required string UnetFamily { get; init; }
    public required string UnetFingerprint { get; init; }
    /// <summary>The side ratio of the adaptation it was trained for (e.g. 2.0 for 1024 → 2048), when known.</summary>
    public double? StageScale { get; init; }
    public long TrainingSteps { get; init; }

    /// <summary>The config of a new set for a UNet with <paramref name="unet"/>.</summary>
    public static FeatureUpsamplerConfig For(UpsamplerVariant variant, UNet2DConditionConfig unet, IReadOnlyList<InjectionPoint>? points = null,
        double? stageScale = null)
    {
        var pts = (points ?? InjectionPoint.ReleasedDefault(unet)).ToList();
        if (pts.Count == 0) throw new ArgumentException("at least one injection point is needed", nameof(points));
        if (pts.Distinct().Count() != pts.Count) throw new ArgumentException($"duplicate injection points: {string.Join(",", pts)}", nameof(points));
        if (stageScale is double s && !(s > 1.0)) throw new ArgumentException($"stage scale must be > 1, got {s}", nameof(stageScale));
        return new FeatureUpsamplerConfig
        {
            Variant = variant, Points = pts, Channels = pts.Select(p => p.Channels(unet)).ToList(), TimeEmbedDim = unet.TimeEmbedDim,
            ConditionDim = variant == UpsamplerVariant.Lite ? LiteConditionDim : 0, NormGroups = unet.NormNumGroups,
            UnetFamily = Family(unet), UnetFingerprint = Fingerprint(unet), StageScale = stageScale,
        };
    }

    /// <summary>"sdxl" (text_time), "sd1" (768-wide text), "sd2" (1024-wide text), otherwise "custom".</summary>
    public static string Family(UNet2DConditionConfig c) =>
        c.HasTextTimeEmbedding ? "sdxl" : c.CrossAttentionDim[0] switch { 768 => "sd1", 1024 => "sd2", _ => "custom" };

    /// <summary>A hash of the UNet's architecture (block types, widths, layers, text width, time embedding), not its weights.</summary>
    public static string Fingerprint(UNet2DConditionConfig c)
    {
        var s = string.Join(";",
            $"in={c.InChannels}", $"down={string.Join(",", c.DownBlockTypeNames)}", $"ch={string.Join(",", c.BlockOutChannels)}",
            $"layers={string.Join(",", c.LayersPerBlock)}", $"tlayers={string.Join(",", c.TransformerLayersPerBlock)}",
            $"xattn={string.Join(",", c.CrossAttentionDim)}", $"temb={c.TimeEmbedDim}", $"add={c.AdditionEmbedType ?? "none"}");
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(s)))[..16];
    }

    /// <summary>Every reason this set cannot run in a UNet with <paramref name="unet"/> (empty when it can).</summary>
    public IReadOnlyList<string> Incompatibilities(UNet2DConditionConfig unet)
    {
        var problems = new List<string>();
        var ours = new List<int>();
        for (int i = 0; i < Points.Count; i++)
        {
            var p = Points[i];
            if (p.Kind == UNetBlockKind.Down && p.Index >= unet.NumBlocks)
            {
                problems.Add($"point {p} does not exist (the UNet has {unet.NumBlocks} down blocks)");
                continue;
            }
            int width = p.Channels(unet);
            if (width != Channels[i]) problems.Add($"point {p}: upsampler has {Channels[i]} channels, the UNet has {width}");
        }
        if (TimeEmbedDim != unet.TimeEmbedDim)
            problems.Add($"time embedding width: upsamplers {TimeEmbedDim}, the UNet {unet.TimeEmbedDim}");
        if (problems.Count == 0 && UnetFingerprint != Fingerprint(unet))
            problems.Add($"made for another UNet architecture ({UnetFamily}, fingerprint {UnetFingerprint}); this UNet is {Family(unet)}, fingerprint {Fingerprint(unet)}");
        return problems;
    }

    public string ToJson()
    {
        var o = new JsonObject
        {
            ["format"] = CurrentFormat,
            ["variant"] = UpsamplerVariants.Name(Variant),
            ["injection_points"] = new JsonArray(Points.Select(p => (JsonNode)JsonValue.Create(p.ToString())!).ToArray()),
            ["channels"] = new JsonArray(Channels.Select(c => (JsonNode)JsonValue.Create(c)!).ToArray()),
            ["time_embed_dim"] = TimeEmbedDim,
            ["condition_dim"] = ConditionDim,
            ["norm_groups"] = NormGroups,
            ["unet_family"] = UnetFamily,
            ["unet_fingerprint"] = UnetFingerprint,
            ["stage_scale"] = StageScale is double s ? JsonValue.Create(s) : null,
            ["training_steps"] = TrainingSteps,
        };
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Parses a checkpoint's config.json, reporting every problem at once (<see cref="ConfigException"/>).</summary>
    public static FeatureUpsamplerConfig Parse(string json, string source)
    {
        var c = ConfigJson.Parse(json, source);
        int format = c.Int("format", min: 1);
        if (c.Problems.Count == 0 && format > CurrentFormat) c.Problem($"format {format} is newer than this program reads ({CurrentFormat})");
        var variantName = c.String("variant", allowed: ["full", "lite"]);
        var pointNames = c.StringList("injection_points");
        var points = new List<InjectionPoint>();
        foreach (var n in pointNames)
        {
            try { points.Add(InjectionPoint.Parse(n)); }
            catch (ArgumentException e) { c.Problem(e.Message); }
        }
        var channels = c.IntList("channels", min: 1);
        if (channels.Length != pointNames.Length) c.Problem($"{channels.Length} channel widths for {pointNames.Length} injection points");
        int temb = c.Int("time_embed_dim", min: 1);
        int cond = c.Int("condition_dim", fallback: 0, min: 0);
        int groups = c.Int("norm_groups", fallback: 32, min: 1);
        var family = c.String("unet_family");
        var fingerprint = c.String("unet_fingerprint");
        var scale = c.OptionalDouble("stage_scale");
        long steps = c.Int("training_steps", fallback: 0, min: 0);
        c.ThrowIfInvalid();
        var variant = UpsamplerVariants.Parse(variantName);
        if (variant == UpsamplerVariant.Lite && cond < 1) throw new ConfigException($"{source}: the lite variant needs condition_dim ≥ 1");
        return new FeatureUpsamplerConfig
        {
            Variant = variant, Points = points, Channels = channels, TimeEmbedDim = temb, ConditionDim = cond, NormGroups = groups,
            UnetFamily = family, UnetFingerprint = fingerprint, StageScale = scale, TrainingSteps = steps,
        };
    }
}
