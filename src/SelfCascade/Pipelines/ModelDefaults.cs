using System.Text.Json;
using SelfCascade.IO;

namespace SelfCascade.Pipelines;

/// <summary>
/// Sampling defaults a model folder may carry in model_index.json under <c>_selfcascade_defaults</c> (ignored by
/// diffusers): <c>{"guidance": 3.0, "pivot_strength": 0.5, "steps": 25}</c>. The embedded emoji model uses it: its
/// pixel-space linear noise schedule keeps only 0.7% of the signal at t = 700, so the paper's strength 0.7 (SD's
/// schedule keeps 8.3% there) corresponds to 0.5 (t = 494) for it. Absent values fall back to SD's defaults.
/// </summary>
public sealed record ModelDefaults(double? Guidance = null, double? PivotStrength = null, int? Steps = null)
{
    public const string Key = "_selfcascade_defaults";
    public const double PaperPivotStrength = 0.7;
    public const int DiffusersSteps = 50;

    public static ModelDefaults Read(string modelIndexPath)
    {
        if (!File.Exists(modelIndexPath)) return new ModelDefaults();
        return From(ConfigJson.Load(modelIndexPath));
    }

    /// <summary>The defaults of a loaded model_index.json (a folder's, or the one a single file resolves to).</summary>
    public static ModelDefaults From(ConfigJson index)
    {
        var modelIndexPath = index.Source;
        if (!index.Root.TryGetProperty(Key, out var d) || d.ValueKind != JsonValueKind.Object) return new ModelDefaults();
        var c = new ConfigJson(d, $"{modelIndexPath}: {Key}");
        var result = new ModelDefaults(c.OptionalDouble("guidance"), c.OptionalDouble("pivot_strength"), c.OptionalInt("steps"));
        if (result.PivotStrength is double s && !(s > 0 && s <= 1)) throw new ConfigException($"{modelIndexPath}: {Key}.pivot_strength {s} is outside (0, 1]");
        if (result.Guidance is double g && !(g >= 0)) throw new ConfigException($"{modelIndexPath}: {Key}.guidance {g} must be ≥ 0");
        if (result.Steps is int n && n < 1) throw new ConfigException($"{modelIndexPath}: {Key}.steps {n} must be at least 1");
        return result;
    }
}
