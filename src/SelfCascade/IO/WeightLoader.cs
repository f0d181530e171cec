using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.IO;

/// <summary>
/// Key renames a network accepts from older checkpoints. Only renames diffusers applies itself are allowed
/// (docs/ARCHITECTURE.md §2): legacy VAE attention names, ignorable position-id buffers.
/// </summary>
public interface ILegacyKeyMap
{
    /// <summary>The current name for a legacy checkpoint key, or null when the key is not legacy.</summary>
    string? MapLegacyKey(string key);

    /// <summary>Keys that may appear in a checkpoint and are dropped silently (e.g. text_model.embeddings.position_ids).</summary>
    bool IsIgnorableKey(string key);
}

public sealed record ShapeMismatch(string Name, long[] Expected, long[] Found)
{
    public override string ToString() => $"{Name}: expected [{string.Join(",", Expected)}], file has [{string.Join(",", Found)}]";
}

/// <summary>What a set of weight files holds compared with a network: every problem at once.</summary>
public sealed class WeightCheckReport
{
    public required IReadOnlyList<string> Files { get; init; }
    public required IReadOnlyList<string> Missing { get; init; }
    public required IReadOnlyList<string> Unexpected { get; init; }
    public required IReadOnlyList<ShapeMismatch> Mismatched { get; init; }
    public required IReadOnlyDictionary<string, long> DTypeCounts { get; init; }
    public bool Ok => Missing.Count == 0 && Unexpected.Count == 0 && Mismatched.Count == 0;

    public string Describe()
    {
        var sb = new StringBuilder();
        sb.Append(string.Join(", ", Files.Select(System.IO.Path.GetFileName)));
        if (Ok) return sb.Append(": all keys present with the right shapes").ToString();
        sb.Append($": {Missing.Count} missing, {Unexpected.Count} unexpected, {Mismatched.Count} mis-shaped");
        foreach (var m in Missing) sb.Append("\n  missing: ").Append(m);
        foreach (var u in Unexpected) sb.Append("\n  unexpected: ").Append(u);
        foreach (var w in Mismatched) sb.Append("\n  wrong shape: ").Append(w);
        return sb.ToString();
    }
}

public sealed class WeightLoadException(WeightCheckReport report)
    : IOException("weights do not fit the network: " + report.Describe())
{
    public WeightCheckReport Report { get; } = report;
}

/// <summary>Finds, checks and streams safetensors weights into a network by diffusers state-dict names.</summary>
public static class WeightLoader
{
    private static readonly string[] BaseNames = ["diffusion_pytorch_model", "model"];

    /// <summary>
    /// The weight files of one component folder: `{base}[.{variant}].safetensors` or a sharded
    /// `{base}.safetensors.index[.{variant}].json`, for base `diffusion_pytorch_model` (diffusers) or `model`
    /// (transformers). With no variant asked, plain files are preferred and a single variant is taken if alone; with
    /// a variant asked that the folder has no file of, its plain files.
    /// </summary>
    public static IReadOnlyList<string> ResolveWeightFiles(string componentDir, string? variant = null)
    {
        if (!Directory.Exists(componentDir)) throw new DirectoryNotFoundException($"{componentDir}: folder not found");
        // diffusers' pipeline loading (model_variants): a folder without any file of the variant loads its plain
        // weights, and only those (a hub repo's fp16 variant often leaves out a component).
        var wanted = variant is not null && !Directory.EnumerateFiles(componentDir).Select(System.IO.Path.GetFileName)
            .Any(n => n!.Split('.') is { Length: > 2 } parts && parts[1].StartsWith(variant, StringComparison.Ordinal)) ? null : variant;
        foreach (var b in BaseNames)
        {
            var single = System.IO.Path.Combine(componentDir, wanted is null ? $"{b}.safetensors" : $"{b}.{wanted}.safetensors");
            if (File.Exists(single)) return [single];
            var index = System.IO.Path.Combine(componentDir, wanted is null ? $"{b}.safetensors.index.json" : $"{b}.safetensors.index.{wanted}.json");
            if (File.Exists(index)) return ReadShardIndex(index);
        }
        if (variant is null)
        {
            var variants = Directory.GetFiles(componentDir, "*.safetensors")
                .Select(System.IO.Path.GetFileName).OfType<string>()
                .Where(n => BaseNames.Any(b => n.StartsWith(b + ".", StringComparison.Ordinal)) && !n.Contains("-of-"))
                .ToList();
            if (variants.Count == 1) return [System.IO.Path.Combine(componentDir, variants[0])];
        }
        var bins = Directory.GetFiles(componentDir, "*.bin").Concat(Directory.GetFiles(componentDir, "*.ckpt")).ToList();
        var hint = bins.Count > 0 ? $" (found {string.Join(", ", bins.Select(System.IO.Path.GetFileName))}: only safetensors weights are read; convert them first)" : "";
        throw new FileNotFoundException($"{componentDir}: no safetensors weights{(variant is null ? "" : $" for variant '{variant}'")}{hint}");
    }

    /// <summary>The shard files named by a `*.safetensors.index.json` weight map, each checked to exist.</summary>
    public static IReadOnlyList<string> ReadShardIndex(string indexPath)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(indexPath)); }
        catch (JsonException e) { throw new InvalidDataException($"{indexPath}: not valid JSON ({e.Message})"); }
        using (doc)
        {
            if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{indexPath}: no weight_map object");
            var dir = System.IO.Path.GetDirectoryName(indexPath)!;
            var files = new List<string>();
            foreach (var p in map.EnumerateObject())
            {
                var shard = p.Value.GetString() ?? throw new InvalidDataException($"{indexPath}: weight_map['{p.Name}'] is not a file name");
                if (shard.Contains("..") || System.IO.Path.IsPathRooted(shard))
                    throw new InvalidDataException($"{indexPath}: shard name '{shard}' leaves the folder");
                var full = System.IO.Path.Combine(dir, shard);
                if (!files.Contains(full)) files.Add(full);
            }
            foreach (var f in files)
                if (!File.Exists(f)) throw new FileNotFoundException($"{indexPath}: shard {System.IO.Path.GetFileName(f)} is missing", f);
            return files;
        }
    }

    /// <summary>Compares the files' headers with the network's state dict without reading any data.</summary>
    public static WeightCheckReport Check(nn.Module network, IReadOnlyList<string> files)
    {
        var sources = OpenAll(files);
        try { return Check(network, sources); }
        finally { foreach (var s in sources) s.Dispose(); }
    }

    /// <summary>Compares open tensor sources (any container, or a key-mapped view of one) with the network's state dict.</summary>
    public static WeightCheckReport Check(nn.Module network, IReadOnlyList<ITensorSource> sources)
    {
        var (report, _) = Plan(network, sources);
        return report;
    }

    /// <summary>
    /// Streams every tensor into the network's parameters and buffers (converting dtype and device on the way).
    /// Throws <see cref="WeightLoadException"/> listing every missing, unexpected and mis-shaped key, before any
    /// data is read, unless <paramref name="strict"/> is false (then only matching keys are loaded).
    /// </summary>
    public static WeightCheckReport Load(nn.Module network, IReadOnlyList<string> files, bool strict = true)
    {
        var sources = OpenAll(files);
        try { return Load(network, sources, strict); }
        finally { foreach (var s in sources) s.Dispose(); }
    }

    /// <summary>
    /// <see cref="Load(nn.Module, IReadOnlyList{string}, bool)"/> over open tensor sources: safetensors files, a
    /// pickle, or a single-file checkpoint's component seen through its key map. The sources stay open (the caller
    /// owns them); one tensor at a time is staged.
    /// </summary>
    public static WeightCheckReport Load(nn.Module network, IReadOnlyList<ITensorSource> sources, bool strict = true)
    {
        var (report, plan) = Plan(network, sources);
        if (strict && !report.Ok) throw new WeightLoadException(report);
        var state = network.state_dict();
        using var _ = torch.no_grad();
        foreach (var (f, fileKey, target) in plan)
        {
            var dest = state[target];
            var entry = f.Entries[fileKey];
            if (dest.shape.SequenceEqual(entry.Shape)) f.ReadInto(fileKey, dest);
            else
            {
                // Same elements, other shape (legacy 1x1-conv attention weights): read then reshape.
                using var t = f.Read(fileKey);
                using var r = t.reshape(dest.shape);
                dest.copy_(r);
            }
        }
        return report;
    }

    private static List<ITensorSource> OpenAll(IReadOnlyList<string> files)
    {
        var sources = new List<ITensorSource>();
        try
        {
            foreach (var f in files) sources.Add(SafeTensorsFile.Open(f));
            return sources;
        }
        catch
        {
            foreach (var s in sources) s.Dispose();
            throw;
        }
    }

    private static (WeightCheckReport, List<(ITensorSource Source, string FileKey, string Target)>) Plan(nn.Module network, IReadOnlyList<ITensorSource> sources)
    {
        var map = network as ILegacyKeyMap;
        var expected = new Dictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var (name, t) in network.state_dict()) expected[name] = t.shape;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var unexpected = new List<string>();
        var mismatched = new List<ShapeMismatch>();
        var dtypes = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var plan = new List<(ITensorSource, string, string)>();
        foreach (var source in sources)
        {
            foreach (var (key, e) in source.Entries)
            {
                var target = expected.ContainsKey(key) ? key : map?.MapLegacyKey(key) ?? key;
                if (!expected.TryGetValue(target, out var shape))
                {
                    if (map?.IsIgnorableKey(key) != true) unexpected.Add(key);
                    continue;
                }
                if (!seen.Add(target)) { unexpected.Add(key + " (duplicate of " + target + ")"); continue; }
                dtypes[e.DType] = dtypes.GetValueOrDefault(e.DType) + 1;
                bool sameShape = shape.SequenceEqual(e.Shape);
                bool reshapeOk = !sameShape && target != key && SqueezedEqual(shape, e.Shape);
                if (!sameShape && !reshapeOk) { mismatched.Add(new ShapeMismatch(target, shape, e.Shape)); continue; }
                plan.Add((source, key, target));
            }
        }
        var missing = expected.Keys.Where(k => !seen.Contains(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var report = new WeightCheckReport
        {
            Files = sources.Select(s => s.Path).ToList(), Missing = missing, Unexpected = unexpected, Mismatched = mismatched, DTypeCounts = dtypes,
        };
        return (report, plan);
    }

    private static bool SqueezedEqual(long[] a, long[] b) =>
        a.Where(d => d != 1).SequenceEqual(b.Where(d => d != 1));
}
