using System.Text.Json;

namespace SelfCascade.IO;

/// <summary>A config file's problem (missing required key, impossible value), naming the file and key.</summary>
public sealed class ConfigException(string message) : IOException(message);

/// <summary>
/// Typed, validated access to a diffusers/transformers `config.json`. Unknown keys are ignored; reading a missing
/// required key or an impossible value records a problem, and <see cref="ThrowIfInvalid"/> reports all of them at once.
/// </summary>
public sealed class ConfigJson
{
    private readonly JsonElement _root;
    private readonly List<string> _problems = [];

    public string Source { get; }
    public IReadOnlyList<string> Problems => _problems;

    public ConfigJson(JsonElement root, string source)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new ConfigException($"{source}: config is not a JSON object");
        _root = root.Clone();
        Source = source;
    }

    public static ConfigJson Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: config file not found", path);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            return new ConfigJson(doc.RootElement, path);
        }
        catch (JsonException e) { throw new ConfigException($"{path}: not valid JSON ({e.Message})"); }
    }

    public static ConfigJson Parse(string json, string source = "<config>")
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            return new ConfigJson(doc.RootElement, source);
        }
        catch (JsonException e) { throw new ConfigException($"{source}: not valid JSON ({e.Message})"); }
    }

    public JsonElement Root => _root;
    public bool Has(string key) => _root.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null;

    public void Problem(string message) => _problems.Add(message);

    public void ThrowIfInvalid()
    {
        if (_problems.Count > 0)
            throw new ConfigException($"{Source}: {_problems.Count} problem(s): " + string.Join("; ", _problems));
    }

    private bool TryGet(string key, out JsonElement v) =>
        _root.TryGetProperty(key, out v) && v.ValueKind != JsonValueKind.Null;

    public int Int(string key, int? fallback = null, int min = int.MinValue, int max = int.MaxValue)
    {
        if (!TryGet(key, out var v)) return Missing(key, fallback) ?? 0;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var n)) { _problems.Add($"'{key}' must be an integer, got {v.GetRawText()}"); return fallback ?? 0; }
        if (n < min || n > max) _problems.Add($"'{key}' = {n} is outside [{min}, {max}]");
        return n;
    }

    public double Double(string key, double? fallback = null, double min = double.NegativeInfinity, double max = double.PositiveInfinity)
    {
        if (!TryGet(key, out var v)) return Missing(key, fallback) ?? 0;
        if (v.ValueKind != JsonValueKind.Number) { _problems.Add($"'{key}' must be a number, got {v.GetRawText()}"); return fallback ?? 0; }
        var d = v.GetDouble();
        if (d < min || d > max || double.IsNaN(d)) _problems.Add($"'{key}' = {d} is outside [{min}, {max}]");
        return d;
    }

    public double? OptionalDouble(string key) =>
        TryGet(key, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;

    public int? OptionalInt(string key) =>
        TryGet(key, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var n) ? n : null;

    public bool Bool(string key, bool? fallback = null)
    {
        if (!TryGet(key, out var v)) return Missing(key, fallback) ?? false;
        if (v.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) { _problems.Add($"'{key}' must be true or false, got {v.GetRawText()}"); return fallback ?? false; }
        return v.GetBoolean();
    }

    public string String(string key, string? fallback = null, IReadOnlyCollection<string>? allowed = null)
    {
        if (!TryGet(key, out var v)) return MissingRef(key, fallback) ?? "";
        if (v.ValueKind != JsonValueKind.String) { _problems.Add($"'{key}' must be a string, got {v.GetRawText()}"); return fallback ?? ""; }
        var s = v.GetString()!;
        if (allowed != null && !allowed.Contains(s)) _problems.Add($"'{key}' = '{s}' is not one of {string.Join(", ", allowed)}");
        return s;
    }

    public string? OptionalString(string key) =>
        TryGet(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    /// <summary>An int list; a single number is broadcast to <paramref name="broadcastTo"/> entries when given.</summary>
    public int[] IntList(string key, int[]? fallback = null, int? broadcastTo = null, int min = int.MinValue)
    {
        if (!TryGet(key, out var v)) return MissingRef(key, fallback) ?? [];
        if (v.ValueKind == JsonValueKind.Number && broadcastTo is int n && v.TryGetInt32(out var one))
        {
            if (one < min) _problems.Add($"'{key}' = {one} is below {min}");
            return Enumerable.Repeat(one, n).ToArray();
        }
        if (v.ValueKind != JsonValueKind.Array) { _problems.Add($"'{key}' must be a list of integers, got {v.GetRawText()}"); return fallback ?? []; }
        var list = new List<int>();
        foreach (var e in v.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out var x)) { _problems.Add($"'{key}' has a non-integer entry {e.GetRawText()}"); continue; }
            if (x < min) _problems.Add($"'{key}' has {x}, below {min}");
            list.Add(x);
        }
        if (broadcastTo is int m && list.Count != m) _problems.Add($"'{key}' has {list.Count} entries, expected {m}");
        return list.ToArray();
    }

    /// <summary>True when the key holds a single number rather than a list.</summary>
    public bool IsScalar(string key) => TryGet(key, out var v) && v.ValueKind == JsonValueKind.Number;

    public string[] StringList(string key, string[]? fallback = null)
    {
        if (!TryGet(key, out var v)) return MissingRef(key, fallback) ?? [];
        if (v.ValueKind != JsonValueKind.Array) { _problems.Add($"'{key}' must be a list of strings, got {v.GetRawText()}"); return fallback ?? []; }
        var list = new List<string>();
        foreach (var e in v.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.String) { _problems.Add($"'{key}' has a non-string entry {e.GetRawText()}"); continue; }
            list.Add(e.GetString()!);
        }
        return list.ToArray();
    }

    private T? Missing<T>(string key, T? fallback) where T : struct
    {
        if (fallback is null) _problems.Add($"required key '{key}' is missing");
        return fallback;
    }

    private T? MissingRef<T>(string key, T? fallback) where T : class
    {
        if (fallback is null) _problems.Add($"required key '{key}' is missing");
        return fallback;
    }
}
