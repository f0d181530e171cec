using System.Text.Json;
using System.Text.RegularExpressions;

namespace SelfCascade.Checkpoints.Hub;

/// <summary>
/// Which files of a diffusers repository the pipeline needs, from the repository's file list and its
/// model_index.json, following diffusers' DiffusionPipeline.download (v0.28): for each component folder the
/// weights (safetensors only; the variant's files where that folder has them, as diffusers' per-folder
/// model_variants) plus its config.json; every other file of tokenizer/scheduler-like folders. Never code
/// (`*.py`), pickles (`.bin`, `.ckpt`, `.pt`), flax, onnx or TF files, nor components the pipeline does not load
/// (safety checker, feature extractor, image encoder).
/// </summary>
public static partial class HubFileSelector
{
    public const string ModelIndex = "model_index.json";

    /// <summary>Largest model_index.json read (real ones are under 1 KB).</summary>
    public const int MaxIndexBytes = 1 << 20;

    /// <summary>Components diffusers pipelines list that SelfCascade never loads.</summary>
    public static readonly IReadOnlySet<string> Unused = new HashSet<string>(StringComparer.Ordinal) { "safety_checker", "feature_extractor", "image_encoder" };

    private static readonly string[] WeightBases = ["diffusion_pytorch_model", "model"];

    // Files that are weights (chosen below) or code/pickles (never fetched).
    private static readonly string[] WeightOrCodeSuffixes =
        [".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".onnx", ".onnx_data", ".pb", ".h5", ".gguf", ".py", ".pyc"];

    [GeneratedRegex("^(?<base>diffusion_pytorch_model|model)(?:\\.(?<variant>[A-Za-z0-9_]+))?(?<shard>-\\d{5}-of-\\d{5})?\\.safetensors$")]
    private static partial Regex WeightFileRegex();

    [GeneratedRegex("^(?<base>diffusion_pytorch_model|model)\\.safetensors\\.index(?:\\.(?<variant>[A-Za-z0-9_]+))?\\.json$")]
    private static partial Regex WeightIndexRegex();

    /// <summary>The component folders model_index.json names (entries `"name": [library, class]` with a class).</summary>
    public static IReadOnlyList<string> Components(byte[] modelIndexJson, string source)
    {
        if (modelIndexJson.Length > MaxIndexBytes) throw new HubException(HubErrorKind.Protocol, $"{source}: model_index.json is {modelIndexJson.Length} bytes");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(modelIndexJson, new JsonDocumentOptions { AllowTrailingCommas = true, MaxDepth = 16 }); }
        catch (JsonException e) { throw new HubException(HubErrorKind.Protocol, $"{source}: model_index.json is not valid JSON ({e.Message})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new HubException(HubErrorKind.Protocol, $"{source}: model_index.json is not a JSON object");
            var list = new List<string>();
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name.StartsWith('_') || p.Value.ValueKind != JsonValueKind.Array || p.Value.GetArrayLength() != 2) continue;
                if (p.Value[1].ValueKind != JsonValueKind.String) continue; // [null, null]: an absent optional component
                if (p.Name.Contains('/')) throw new HubException(HubErrorKind.UnsafeName, $"{source}: component name {HubNames.Show(p.Name)} is not one folder name");
                HubNames.RequireRepoPath(p.Name, $"{source}: component");
                list.Add(p.Name);
            }
            return list;
        }
    }

    /// <summary>
    /// The files to fetch from <paramref name="repoFiles"/> (model_index.json first). A component whose weights
    /// exist only as pickles/flax/onnx is one error naming what was found.
    /// </summary>
    public static IReadOnlyList<string> Select(IReadOnlyCollection<string> repoFiles, IReadOnlyList<string> components, string? variant, string source)
    {
        var selected = new List<string> { ModelIndex };
        foreach (var comp in components)
        {
            if (Unused.Contains(comp)) continue;
            var prefix = comp + "/";
            var inFolder = repoFiles.Where(f => f.StartsWith(prefix, StringComparison.Ordinal)).Select(f => f[prefix.Length..]).ToList();
            bool isModel = inFolder.Any(f => !f.Contains('/') && IsWeightOrCode(f) && !f.EndsWith(".py", StringComparison.Ordinal) && !f.EndsWith(".pyc", StringComparison.Ordinal));
            if (!isModel)
            {
                // Tokenizer, scheduler and the like: every file but weights and code.
                selected.AddRange(inFolder.Where(f => !IsWeightOrCode(f)).Select(f => prefix + f));
                continue;
            }
            var weights = ChooseWeights(inFolder.Where(f => !f.Contains('/')).ToList(), variant);
            if (weights is null)
            {
                var found = inFolder.Where(IsWeightOrCode).Take(6).ToList();
                throw new HubException(HubErrorKind.Protocol,
                    $"{source}: component '{comp}' has no safetensors weights (found {string.Join(", ", found)}); only safetensors are loaded");
            }
            if (inFolder.Contains("config.json")) selected.Add(prefix + "config.json");
            selected.AddRange(weights.Select(w => prefix + w));
        }
        return selected.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// The weight files of one folder (names without folder): the variant's (`{base}.{variant}.safetensors`, its
    /// shards and `.safetensors.index.{variant}.json`) when present, else the plain ones, else, with no variant
    /// asked and exactly one variant in the folder, that one (what WeightLoader takes then). Null otherwise.
    /// </summary>
    public static IReadOnlyList<string>? ChooseWeights(IReadOnlyList<string> names, string? variant)
    {
        foreach (var b in WeightBases)
        {
            var mine = names.Where(n => VariantOf(n, b, out var v) && v == variant).ToList();
            if (variant is not null && mine.Count > 0) return mine;
            var plain = names.Where(n => VariantOf(n, b, out var v) && v is null).ToList();
            if (plain.Count > 0) return plain;
        }
        foreach (var b in variant is null ? WeightBases : [])
        {
            var byVariant = names.Where(n => VariantOf(n, b, out var v) && v is not null)
                .GroupBy(n => { VariantOf(n, b, out var v); return v!; }).ToList();
            if (byVariant.Count == 1) return byVariant[0].ToList();
        }
        return null;
    }

    /// <summary>Whether <paramref name="name"/> is a safetensors weight or weight index of base <paramref name="b"/>, and its variant.</summary>
    private static bool VariantOf(string name, string b, out string? variant)
    {
        variant = null;
        var m = WeightFileRegex().Match(name);
        if (!m.Success) m = WeightIndexRegex().Match(name);
        if (!m.Success || m.Groups["base"].Value != b) return false;
        variant = m.Groups["variant"].Success ? m.Groups["variant"].Value : null;
        return true;
    }

    private static bool IsWeightOrCode(string name) =>
        WeightOrCodeSuffixes.Any(s => name.EndsWith(s, StringComparison.OrdinalIgnoreCase))
        || name.Contains(".safetensors.index", StringComparison.Ordinal) || name.Contains(".bin.index", StringComparison.Ordinal);

    /// <summary>
    /// Single-file checkpoints at the top of a repository without model_index.json: the `.safetensors` files (the
    /// variant's when asked and present), or, when there are none, the pickles (`.ckpt`, `.pt`, `.pth`), which the
    /// single-file loader reads with its allow-list unpickler only.
    /// </summary>
    public static IReadOnlyList<string> SingleFileCandidates(IReadOnlyCollection<string> repoFiles, string? variant)
    {
        var top = repoFiles.Where(f => !f.Contains('/')).ToList();
        var st = top.Where(f => f.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)).ToList();
        if (variant is not null)
        {
            var v = st.Where(f => f.Contains("." + variant + ".", StringComparison.Ordinal) || f.Contains("-" + variant + ".", StringComparison.Ordinal)).ToList();
            if (v.Count > 0) return v;
        }
        if (st.Count > 0) return st;
        return top.Where(f => f.EndsWith(".ckpt", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".pt", StringComparison.OrdinalIgnoreCase)
                              || f.EndsWith(".pth", StringComparison.OrdinalIgnoreCase)).ToList();
    }
}
