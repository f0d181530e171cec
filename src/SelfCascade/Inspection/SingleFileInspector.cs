using SelfCascade.Checkpoints.SingleFile;
using SelfCascade.IO;
using TorchSharp;

namespace SelfCascade.Inspection;

/// <summary>
/// `inspect` for a single-file checkpoint: the detected family and prediction type (and why), where the configs
/// come from, and per component its dtypes, exact parameter count (the network built on the meta device) and
/// every missing, unexpected or mis-shaped key, read from the header only.
/// </summary>
public static class SingleFileInspector
{
    private static readonly Dictionary<string, string> Classes = new()
    {
        ["unet"] = "UNet2DConditionModel", ["vae"] = "AutoencoderKL", ["text_encoder"] = "CLIPTextModel",
        ["text_encoder_2"] = "CLIPTextModelWithProjection",
    };

    public static ModelReport Inspect(string path, SingleFileOptions? options = null)
    {
        using var ck = SingleFileCheckpoint.Open(path, options);
        var report = new ModelReport
        {
            Root = Path.GetFullPath(path), Family = ck.Family, PredictionType = ck.PredictionType,
            PipelineClass = ck.ModelIndex.OptionalString("_class_name"),
        };
        long bytes = new FileInfo(path).Length;
        report.Details.Add($"layout: original single file ({bytes:N0} bytes, {ck.File.Entries.Count} tensors)");
        report.Details.Add($"prediction type: {ck.PredictionType} ({ck.PredictionTypeReason})");
        report.Details.Add($"configs: {ck.ConfigSource}");
        var other = ck.OtherKeys();
        if (other.Count > 0) report.Details.Add($"ignored keys outside the components: {other.Count} ({SingleFileLayout.DescribePrefixes(other)})");
        foreach (var component in ComponentKeyMaps.Networks(ck.Layout))
        {
            var c = new ComponentReport { Name = component, ClassName = Classes[component], Library = component.StartsWith("text") ? "transformers" : "diffusers" };
            report.Components.Add(c);
            try
            {
                var (map, network) = ComponentKeyMaps.Build(component, ck.Config(component), ck.Layout);
                using (network)
                {
                    c.ParameterCount = network.parameters().Sum(p => p.numel());
                    c.Details.Add($"keys: {map.Prefix}* ({ck.File.Entries.Keys.Count(map.Owns)} tensors)");
                    foreach (var (k, e) in ck.File.Entries)
                        if (map.Owns(k)) c.DTypes[e.DType] = c.DTypes.GetValueOrDefault(e.DType) + 1;
                    var ignored = ck.File.Entries.Keys.Count(map.IsIgnorable);
                    if (ignored > 0) c.Details.Add($"ignored as diffusers does: {ignored} tensors (e.g. {ck.File.Entries.Keys.First(map.IsIgnorable)})");
                    var check = WeightLoader.Check(network, [map.Bind(ck.File)]);
                    foreach (var m in check.Missing) c.Problems.Add("missing: " + m);
                    foreach (var u in check.Unexpected) c.Problems.Add("unexpected: " + u);
                    foreach (var w in check.Mismatched) c.Problems.Add("wrong shape: " + w);
                }
            }
            catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException)
            {
                c.Problems.Add(e.Message);
            }
        }
        return report;
    }
}
