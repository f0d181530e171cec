using SelfCascade.IO;
using SelfCascade.Models;
using SelfCascade.Models.Clip;
using SelfCascade.Models.Unet;
using SelfCascade.Models.Vae;
using SelfCascade.Schedulers;
using TorchSharp;

namespace SelfCascade.Inspection;

/// <summary>What `selfcascade inspect` reports of one component.</summary>
public sealed class ComponentReport
{
    public required string Name { get; init; }
    public required string ClassName { get; init; }
    public string? Library { get; init; }
    public long? ParameterCount { get; set; }
    public Dictionary<string, long> DTypes { get; } = new(StringComparer.Ordinal);
    public List<(string File, long Bytes)> Files { get; } = [];
    public List<string> Details { get; } = [];
    public List<string> Problems { get; } = [];
    public bool Ok => Problems.Count == 0;
}

public sealed class ModelReport
{
    public required string Root { get; init; }
    public string? PipelineClass { get; init; }
    public ModelFamily Family { get; init; }
    /// <summary>Model-level facts (for a single file: layout, prediction type and why, where the configs came from).</summary>
    public List<string> Details { get; } = [];
    /// <summary>The scheduler's prediction type, when known (single files: detected or given).</summary>
    public string? PredictionType { get; init; }
    public List<ComponentReport> Components { get; } = [];
    public bool Ok => Components.All(c => c.Ok);
    public int ProblemCount => Components.Sum(c => c.Problems.Count);
}

/// <summary>
/// Reads a diffusers folder (a pipeline with model_index.json, or one component folder with config.json) and,
/// per component, builds the network from its config on the meta device (no memory), counts its parameters
/// exactly and checks every weight file's header against it, collecting all problems instead of stopping at the
/// first.
/// </summary>
public static class ModelInspector
{
    public static ModelReport Inspect(string dir)
    {
        if (File.Exists(dir)) return SingleFileInspector.Inspect(dir);
        var root = Path.GetFullPath(dir);
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"{root}: model folder not found");
        if (File.Exists(Path.Combine(root, "model_index.json")))
        {
            var folder = DiffusersModelFolder.Open(root);
            ModelFamily family;
            try { family = folder.DetectFamily(); }
            catch (Exception e) when (e is IOException or InvalidDataException) { family = ModelFamily.Unknown; }
            var report = new ModelReport { Root = root, PipelineClass = folder.PipelineClass, Family = family };
            foreach (var c in folder.Components.Values.OrderBy(c => c.Name, StringComparer.Ordinal))
                report.Components.Add(InspectComponent(c.Name, c.ClassName, c.Library, c.Directory));
            return report;
        }
        var configPath = Path.Combine(root, "config.json");
        if (!File.Exists(configPath))
            throw new FileNotFoundException($"{root}: neither model_index.json (a pipeline) nor config.json (a component) found");
        var config = ConfigJson.Load(configPath);
        var cls = config.OptionalString("_class_name") ?? FirstArchitecture(config) ?? "unknown";
        var single = new ModelReport
        {
            Root = root,
            Family = cls == "UNet2DConditionModel" ? DiffusersModelFolder.DetectFamily(config, null) : ModelFamily.Unknown,
        };
        single.Components.Add(InspectComponent(Path.GetFileName(root), cls, null, root));
        return single;
    }

    private static string? FirstArchitecture(ConfigJson c)
    {
        var arch = c.StringList("architectures", []);
        if (arch.Length > 0) return arch[0];
        return c.OptionalString("model_type") == "clip_text_model" ? "CLIPTextModel" : null;
    }

    public static ComponentReport InspectComponent(string name, string className, string? library, string dir)
    {
        var r = new ComponentReport { Name = name, ClassName = className, Library = library };
        if (!Directory.Exists(dir)) { r.Problems.Add($"folder {name}/ is missing"); return r; }
        try
        {
            switch (className)
            {
                case "CLIPTokenizer" or "CLIPTokenizerFast":
                    var tok = ClipTokenizer.FromFolder(dir);
                    r.Details.Add($"vocabulary {tok.VocabSize:N0} tokens, max length {tok.ModelMaxLength}, pad '{tok.PadToken}' (id {tok.PadTokenId})");
                    return r;
                case var s when s.EndsWith("Scheduler", StringComparison.Ordinal):
                    var sc = SchedulerConfig.Load(Path.Combine(dir, "scheduler_config.json"));
                    using (var scheduler = SchedulerFactory.Create(sc))
                        r.Details.Add($"{scheduler.ClassName}: prediction {sc.PredictionType}, spacing {sc.TimestepSpacing}, {sc.NumTrainTimesteps} training steps, betas {sc.BetaSchedule} {sc.BetaStart}..{sc.BetaEnd}");
                    return r;
            }
            var network = CreateOnMeta(className, Path.Combine(dir, "config.json"), r.Details);
            if (network is null)
            {
                r.Details.Add("not a network SelfCascade runs; weights not checked");
                return r;
            }
            using (network)
            {
                r.ParameterCount = network.parameters().Sum(p => p.numel());
                IReadOnlyList<string> files;
                try { files = WeightLoader.ResolveWeightFiles(dir); }
                catch (FileNotFoundException e) { r.Problems.Add(e.Message); return r; }
                foreach (var f in files) r.Files.Add((Path.GetFileName(f), new FileInfo(f).Length));
                var check = WeightLoader.Check(network, files);
                foreach (var (dtype, count) in check.DTypeCounts) r.DTypes[dtype] = count;
                r.Problems.AddRange(check.Missing.Select(m => "missing: " + m));
                r.Problems.AddRange(check.Unexpected.Select(u => "unexpected: " + u));
                r.Problems.AddRange(check.Mismatched.Select(m => "wrong shape: " + m));
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or KeyNotFoundException or NotSupportedException)
        {
            r.Problems.Add(e.Message);
        }
        return r;
    }

    /// <summary>The network a class name denotes, built from its config on the meta device; null for classes not run here.</summary>
    public static torch.nn.Module? CreateOnMeta(string className, string configPath, List<string>? details = null)
    {
        using var meta = ModelConstruction.On(torch.META);
        switch (className)
        {
            case "UNet2DConditionModel":
            {
                var c = UNet2DConditionConfig.Load(configPath);
                details?.Add($"{c.NumBlocks} blocks {string.Join("/", c.BlockOutChannels)} channels, sample size {c.SampleSize}, cross-attention {string.Join("/", c.CrossAttentionDim.Distinct())}{(c.HasTextTimeEmbedding ? ", text_time embedding" : "")}{(c.UseLinearProjection ? ", linear projections" : ", 1x1-conv projections")}");
                return new UNet2DConditionModel(c);
            }
            case "AutoencoderKL":
            {
                var c = AutoencoderKLConfig.Load(configPath);
                details?.Add($"scale factor {c.ScaleFactor}, latent channels {c.LatentChannels}, scaling_factor {c.ScalingFactor}");
                return new AutoencoderKL(c);
            }
            case "CLIPTextModel" or "CLIPTextModelWithProjection":
            {
                var c = ClipTextConfig.Load(configPath);
                details?.Add($"{c.NumHiddenLayers} layers, width {c.HiddenSize}, {c.HiddenAct}{(c.WithProjection ? $", projection {c.ProjectionDim}" : "")}");
                return new ClipTextModel(c);
            }
            default:
                return null;
        }
    }
}
