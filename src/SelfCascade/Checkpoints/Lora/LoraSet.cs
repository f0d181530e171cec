using System.Text.RegularExpressions;
using SelfCascade.Checkpoints.Pickle;
using SelfCascade.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Checkpoints.Lora;

/// <summary>A LoRA file's layer set is malformed, or its keys do not fit the model: every problem listed.</summary>
public sealed class LoraException(string message) : IOException(message);

/// <summary>
/// A LoRA file read into memory (LoRA files are small): kohya/A1111, diffusers/PEFT or older diffusers keys, in a
/// safetensors file or a checkpoint pickle (read by the allow-list unpickler). Names are resolved to our modules
/// (diffusers names) by <see cref="Match"/>; <see cref="LoraApplication.Apply"/> merges them into the weights.
/// </summary>
public sealed class LoraSet : IDisposable
{
    public string Path { get; }
    public LoraFormat Format { get; }
    public IReadOnlyList<LoraLayer> Layers { get; }
    /// <summary>Keys of the file that belong to no recognised LoRA layout (or to an incomplete down/up pair).</summary>
    public IReadOnlyList<string> UnknownKeys { get; }

    private LoraSet(string path, LoraFormat format, List<LoraLayer> layers, List<string> unknown)
    {
        Path = path; Format = format; Layers = layers; UnknownKeys = unknown;
    }

    public static readonly string[] Components = ["unet", "text_encoder", "text_encoder_2"];

    private static readonly (string Prefix, string Component)[] KohyaPrefixes =
        [("lora_unet_", "unet"), ("lora_te1_", "text_encoder"), ("lora_te2_", "text_encoder_2"), ("lora_te_", "text_encoder")];

    /// <summary>Reads a LoRA file (.safetensors, or .pt/.ckpt/.bin through the allow-list unpickler).</summary>
    public static LoraSet Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: LoRA file not found", path);
        using ITensorSource source = path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)
            ? SafeTensorsFile.Open(path) : PickleCheckpoint.Open(path);
        return FromSource(source);
    }

    /// <summary>Reads the LoRA layers of any tensor source.</summary>
    public static LoraSet FromSource(ITensorSource source)
    {
        var keys = source.Entries.Keys.ToList();
        bool kohya = keys.Any(k => KohyaPrefixes.Any(p => k.StartsWith(p.Prefix, StringComparison.Ordinal)));
        bool peft = keys.Any(k => k.Contains(".lora_A.", StringComparison.Ordinal) || k.Contains(".lora_B.", StringComparison.Ordinal));
        var format = kohya ? LoraFormat.Kohya : peft ? LoraFormat.Peft : LoraFormat.DiffusersLegacy;
        var groups = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal); // stem -> role -> key
        var unknown = new List<string>();
        foreach (var key in keys)
        {
            var (stem, role) = Split(key, format);
            if (stem is null) { unknown.Add(key); continue; }
            if (!groups.TryGetValue(stem, out var g)) groups[stem] = g = new(StringComparer.Ordinal);
            if (!g.TryAdd(role!, key)) unknown.Add(key + " (duplicate)");
        }
        var layers = new List<LoraLayer>();
        try
        {
            foreach (var (stem, g) in groups)
            {
                if (!g.TryGetValue("down", out var downKey) || !g.TryGetValue("up", out var upKey))
                {
                    unknown.AddRange(g.Values.Select(k => k + " (no matching " + (g.ContainsKey("down") ? "up" : "down") + " weight)"));
                    continue;
                }
                var layer = ReadLayer(source, stem, format, downKey, upKey, g.GetValueOrDefault("alpha"), unknown);
                if (layer != null) layers.Add(layer);
            }
        }
        catch
        {
            foreach (var l in layers) l.Dispose();
            throw;
        }
        if (layers.Count == 0)
        {
            var found = string.Join(", ", keys.Take(8));
            throw new LoraException($"{source.Path}: no LoRA layers found (expected kohya lora_unet_*/lora_te_* or diffusers *.lora_A/lora_B keys; found {found}{(keys.Count > 8 ? ", …" : "")})");
        }
        return new LoraSet(source.Path, format, layers, unknown);
    }

    /// <summary>Splits a key into its layer stem and role (down, up, alpha); null stem when the key is not LoRA.</summary>
    private static (string? Stem, string? Role) Split(string key, LoraFormat format)
    {
        (string, string)[] suffixes = format switch
        {
            LoraFormat.Kohya => [(".lora_down.weight", "down"), (".lora_up.weight", "up"), (".alpha", "alpha")],
            LoraFormat.Peft => [(".lora_A.weight", "down"), (".lora_B.weight", "up"), (".alpha", "alpha")],
            _ => [(".lora.down.weight", "down"), (".lora.up.weight", "up"), (".lora_linear_layer.down.weight", "down"),
                  (".lora_linear_layer.up.weight", "up"), ("_lora.down.weight", "down"), ("_lora.up.weight", "up"), (".alpha", "alpha")],
        };
        foreach (var (suffix, role) in suffixes)
            if (key.EndsWith(suffix, StringComparison.Ordinal))
            {
                // Legacy processor names keep "_lora" in the stem so to_q_lora and to_k_lora stay apart.
                var stem = suffix.StartsWith("_lora", StringComparison.Ordinal) ? key[..^(suffix.Length - "_lora".Length)] : key[..^suffix.Length];
                return (stem, role);
            }
        return (null, null);
    }

    private static LoraLayer? ReadLayer(ITensorSource source, string stem, LoraFormat format, string downKey, string upKey, string? alphaKey,
        List<string> unknown)
    {
        string component; string? path = null, flat = null;
        if (format == LoraFormat.Kohya)
        {
            var prefix = KohyaPrefixes.FirstOrDefault(p => stem.StartsWith(p.Prefix, StringComparison.Ordinal));
            if (prefix.Prefix is null) { unknown.AddRange([downKey, upKey]); return null; }
            component = prefix.Component;
            flat = stem[prefix.Prefix.Length..];
        }
        else
        {
            int dot = stem.IndexOf('.');
            component = dot < 0 ? "" : stem[..dot];
            if (!Components.Contains(component)) { unknown.AddRange([downKey, upKey]); return null; }
            path = format == LoraFormat.DiffusersLegacy ? LegacyModulePath(component, stem[(dot + 1)..]) : stem[(dot + 1)..];
        }
        var de = source.Entries[downKey];
        var ue = source.Entries[upKey];
        string? problem = null;
        if (de.Shape.Length is not (2 or 4) || ue.Shape.Length is not (2 or 4)) problem = "down/up weights must be 2-D or 4-D";
        else if (de.Shape[0] != ue.Shape[1]) problem = $"rank mismatch: down [{string.Join(",", de.Shape)}], up [{string.Join(",", ue.Shape)}]";
        else if (ue.Shape.Length == 4 && ue.Shape.Skip(2).Any(d => d != 1)) problem = "the up weight of a conv layer must be 1x1";
        else if (de.Shape[0] == 0) problem = "rank 0";
        if (problem != null) throw new LoraException($"{source.Path}: layer '{stem}': {problem}");
        double? alpha = null;
        if (alphaKey != null)
        {
            using var a = source.Read(alphaKey, ScalarType.Float64);
            if (a.numel() != 1) throw new LoraException($"{source.Path}: '{alphaKey}' is not a scalar");
            alpha = a.item<double>();
            if (!double.IsFinite(alpha.Value)) throw new LoraException($"{source.Path}: '{alphaKey}' is not finite");
        }
        var keys = alphaKey is null ? new[] { downKey, upKey } : [downKey, upKey, alphaKey];
        return new LoraLayer
        {
            FileKey = stem, Component = component, ModulePath = path, FlatName = flat, Alpha = alpha, Keys = keys,
            Down = source.Read(downKey, ScalarType.Float32), Up = source.Read(upKey, ScalarType.Float32),
        };
    }

    /// <summary>Older diffusers names → module paths (what diffusers' LoRACompatible layers and attention processors used).</summary>
    private static string LegacyModulePath(string component, string rest)
    {
        var m = Regex.Match(rest, @"^(.*?)(?:\.processor)?\.to_(q|k|v|out)_lora$");
        if (m.Success)
        {
            var which = m.Groups[2].Value;
            if (component == "unet") return m.Groups[1].Value + (which == "out" ? ".to_out.0" : $".to_{which}");
            return m.Groups[1].Value + (which == "out" ? ".out_proj" : $".{which}_proj");
        }
        return rest;
    }

    /// <summary>
    /// Resolves every layer against the networks' weights (component → state-dict name → shape): kohya names by
    /// flattening each module path ('.' → '_') as kohya's trainer does, dotted names directly.
    /// </summary>
    public LoraMatchReport Match(IReadOnlyDictionary<string, IReadOnlyDictionary<string, long[]>> weights)
    {
        var matched = new List<LoraMatch>();
        var unmatched = new List<string>(UnknownKeys);
        var flatIndex = new Dictionary<string, Dictionary<string, string?>>(StringComparer.Ordinal);
        foreach (var (comp, names) in weights)
        {
            var idx = new Dictionary<string, string?>(StringComparer.Ordinal);
            foreach (var (name, shape) in names)
            {
                if (!name.EndsWith(".weight", StringComparison.Ordinal) || shape.Length is not (2 or 4)) continue;
                var module = name[..^".weight".Length];
                AddFlat(idx, module.Replace('.', '_'), module);
                // CLIPTextModel weights in transformers-5 layout have no text_model. prefix; LoRA files always do.
                if (comp.StartsWith("text_encoder", StringComparison.Ordinal) && !module.StartsWith(TextModelPrefix, StringComparison.Ordinal))
                    AddFlat(idx, (TextModelPrefix + module).Replace('.', '_'), module);
            }
            flatIndex[comp] = idx;
        }
        var seen = new HashSet<(string, string)>();
        foreach (var layer in Layers)
        {
            if (!weights.TryGetValue(layer.Component, out var names))
            {
                unmatched.Add($"{layer.FileKey} (the model has no {layer.Component})");
                continue;
            }
            string? module = layer.ModulePath;
            if (module != null && !names.ContainsKey(module + ".weight") && module.StartsWith(TextModelPrefix, StringComparison.Ordinal) &&
                layer.Component.StartsWith("text_encoder", StringComparison.Ordinal))
                module = module[TextModelPrefix.Length..];
            if (layer.FlatName != null)
            {
                flatIndex[layer.Component].TryGetValue(layer.FlatName, out module);
                module ??= LdmUnetNames.TryResolve(layer.Component, layer.FlatName, flatIndex[layer.Component]);
            }
            if (module is null || !names.TryGetValue(module + ".weight", out var shape))
            {
                unmatched.Add($"{layer.FileKey} (no such module in {layer.Component})");
                continue;
            }
            long cols = layer.Down.shape.Skip(1).Aggregate(1L, (a, b) => a * b);
            long wCols = shape.Skip(1).Aggregate(1L, (a, b) => a * b);
            if (layer.Up.shape[0] != shape[0] || cols != wCols)
            {
                unmatched.Add($"{layer.FileKey} (up [{string.Join(",", layer.Up.shape)}] x down [{string.Join(",", layer.Down.shape)}] does not fit {module}.weight [{string.Join(",", shape)}])");
                continue;
            }
            if (!seen.Add((layer.Component, module)))
            {
                unmatched.Add($"{layer.FileKey} (a second layer for {layer.Component}.{module})");
                continue;
            }
            matched.Add(new LoraMatch(layer, module + ".weight"));
        }
        return new LoraMatchReport(Path, Format, matched, unmatched, Layers.Count);
    }

    private const string TextModelPrefix = "text_model.";

    private static void AddFlat(Dictionary<string, string?> idx, string flat, string module) =>
        idx[flat] = idx.TryGetValue(flat, out var existing) && existing != module ? null : module; // null: ambiguous

    public void Dispose()
    {
        foreach (var l in Layers) l.Dispose();
    }
}

/// <summary>A layer and the weight it updates (state-dict name within its component).</summary>
public sealed record LoraMatch(LoraLayer Layer, string Weight);

/// <summary>Which layers of a LoRA file found their weight, and which keys did not (with the reason).</summary>
public sealed record LoraMatchReport(string Path, LoraFormat Format, IReadOnlyList<LoraMatch> Matched, IReadOnlyList<string> Unmatched, int LayerCount)
{
    public bool Ok => Unmatched.Count == 0;

    public IReadOnlyDictionary<string, int> MatchedPerComponent =>
        Matched.GroupBy(m => m.Layer.Component).ToDictionary(g => g.Key, g => g.Count());

    public string Describe() =>
        $"{Path}: {Format} LoRA, {Matched.Count} of {LayerCount} layers matched" +
        (Unmatched.Count == 0 ? "" : $"; {Unmatched.Count} unmatched: {string.Join("; ", Unmatched)}");
}
