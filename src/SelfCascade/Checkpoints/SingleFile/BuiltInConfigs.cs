using System.Reflection;
using System.Text.Json;
using SelfCascade.IO;
using SelfCascade.Models.Clip;

namespace SelfCascade.Checkpoints.SingleFile;

/// <summary>
/// The full-size configs a single file loads with when no <c>--config DIR</c> is given (embedded resources,
/// Checkpoints/Configs/*.json, written by tests/reference/single-file/make_builtin_configs.py from the hub configs):
/// SD 1.5, SD 2.1-base (512, epsilon), SD 2.1 (768, v-prediction), SDXL base; and CLIP's BPE vocabulary and merges,
/// so a single file needs nothing else, offline.
/// </summary>
public sealed class BuiltInModelConfig
{
    private readonly JsonElement _root;

    public string Id { get; }
    public string Name { get; }
    public string PredictionType { get; }

    private BuiltInModelConfig(string id, JsonElement root)
    {
        Id = id; _root = root;
        Name = root.GetProperty("name").GetString()!;
        PredictionType = root.GetProperty("prediction_type").GetString()!;
    }

    internal static BuiltInModelConfig Parse(string id, byte[] json)
    {
        using var doc = JsonDocument.Parse(json);
        return new BuiltInModelConfig(id, doc.RootElement.Clone());
    }

    public bool Has(string component) => _root.TryGetProperty(component, out _);

    /// <summary>A component's config (unet, vae, text_encoder[_2], scheduler) or model_index.</summary>
    public ConfigJson Config(string component) =>
        _root.TryGetProperty(component, out var c)
            ? new ConfigJson(c, $"built-in {Id} config: {component}")
            : throw new InvalidDataException($"built-in {Id} config has no '{component}'");

    /// <summary>The CLIP tokenizer of <paramref name="component"/> (tokenizer or tokenizer_2): shipped BPE + this model's special tokens.</summary>
    public ClipTokenizer Tokenizer(string component)
    {
        if (!_root.TryGetProperty(component, out var t)) throw new InvalidDataException($"built-in {Id} config has no '{component}'");
        return BuiltInConfigs.ClipTokenizer(t, $"built-in {Id} {component}");
    }
}

public static class BuiltInConfigs
{
    /// <summary>The built-in models, by id.</summary>
    public static readonly IReadOnlyList<string> Ids = ["sd15", "sd21-base", "sd21-v", "sdxl-base"];

    private static readonly Dictionary<string, BuiltInModelConfig> Cache = [];
    private static readonly Dictionary<string, byte[]> ClipFiles = [];

    public static BuiltInModelConfig Get(string id)
    {
        lock (Cache)
        {
            if (Cache.TryGetValue(id, out var c)) return c;
            if (!Ids.Contains(id)) throw new ArgumentException($"no built-in config '{id}' (known: {string.Join(", ", Ids)})");
            c = BuiltInModelConfig.Parse(id, Resource($"SelfCascade.Checkpoints.Configs.{id}.json"));
            Cache[id] = c;
            return c;
        }
    }

    /// <summary>The built-in config for a detected family and prediction type.</summary>
    public static BuiltInModelConfig For(ModelFamily family, string predictionType) => family switch
    {
        ModelFamily.StableDiffusion1 => Get("sd15"),
        ModelFamily.StableDiffusion2 => Get(predictionType == "v_prediction" ? "sd21-v" : "sd21-base"),
        ModelFamily.StableDiffusionXL => Get("sdxl-base"),
        _ => throw new ArgumentException($"no built-in config for family {family}"),
    };

    /// <summary>CLIP's BPE files as a diffusers tokenizer folder would hold them: vocab.json (49,408 tokens), merges.txt.</summary>
    public static byte[] ClipFile(string name)
    {
        if (name is not ("vocab.json" or "merges.txt")) throw new ArgumentException($"no shipped CLIP file '{name}'");
        lock (ClipFiles)
        {
            if (!ClipFiles.TryGetValue(name, out var b)) ClipFiles[name] = b = Resource($"SelfCascade.Checkpoints.Configs.clip.{name}");
            return b;
        }
    }

    /// <summary>A tokenizer from the shipped BPE files and a spec {special_tokens_map, tokenizer_config}.</summary>
    internal static ClipTokenizer ClipTokenizer(JsonElement spec, string source)
    {
        byte[]? Json(string key) => spec.TryGetProperty(key, out var e) ? JsonSerializer.SerializeToUtf8Bytes(e) : null;
        return Models.Clip.ClipTokenizer.FromFiles(name => name switch
        {
            "vocab.json" or "merges.txt" => ClipFile(name),
            "special_tokens_map.json" => Json("special_tokens_map"),
            "tokenizer_config.json" => Json("tokenizer_config"),
            _ => null,
        }, source);
    }

    /// <summary>The tokenizer files of a spec, to write into a diffusers folder.</summary>
    internal static IEnumerable<(string Name, byte[] Bytes)> TokenizerFiles(JsonElement spec)
    {
        yield return ("vocab.json", ClipFile("vocab.json"));
        yield return ("merges.txt", ClipFile("merges.txt"));
        yield return ("special_tokens_map.json", JsonSerializer.SerializeToUtf8Bytes(spec.GetProperty("special_tokens_map")));
        yield return ("tokenizer_config.json", JsonSerializer.SerializeToUtf8Bytes(spec.GetProperty("tokenizer_config")));
    }

    internal static JsonElement TokenizerSpec(BuiltInModelConfig config, string component) => config.Config(component).Root;

    private static byte[] Resource(string name)
    {
        using var s = Assembly.GetExecutingAssembly().GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"embedded resource {name} is missing from the build");
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }
}
