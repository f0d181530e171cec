using System.Text.Json.Nodes;
using SelfCascade.Checkpoints.SingleFile.KeyMaps;
using SelfCascade.IO;
using SelfCascade.Models;
using SelfCascade.Models.Clip;
using SelfCascade.Models.Unet;
using SelfCascade.Models.Vae;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Checkpoints.SingleFile;

/// <summary>How a single file is turned into a component set.</summary>
public sealed record SingleFileOptions
{
    /// <summary>A diffusers folder whose configs (not weights) describe the file's networks (<c>--config DIR</c>); null: the built-in full-size configs.</summary>
    public string? ConfigDir { get; init; }

    /// <summary>"epsilon" or "v_prediction" (<c>--prediction-type</c>); null: the config's, or the guess for SD 2.x.</summary>
    public string? PredictionType { get; init; }
}

/// <summary>
/// A single-file checkpoint in the original layout as a component set: the family from the keys, configs built in
/// (or from <see cref="SingleFileOptions.ConfigDir"/>), the shipped CLIP tokenizer files, and per component the file
/// seen through its key map (<see cref="ComponentKeyMap"/>), so the networks stream their weights from it tensor by
/// tensor with the ordinary loader. Keys outside the components (EMA copies, DDPM buffers) are ignored.
/// </summary>
public sealed class SingleFileCheckpoint : IModelComponents
{
    public static readonly string[] PredictionTypes = ["epsilon", "v_prediction"];

    private readonly DiffusersModelFolder? _configFolder;
    private readonly BuiltInModelConfig _builtIn;
    private readonly BuiltInModelConfig? _builtInConfigs;
    private readonly Dictionary<string, ComponentKeyMap> _maps = [];

    public ITensorSource File { get; }
    public SingleFileLayout Layout { get; }
    public string Source => File.Path;
    public ModelFamily Family => Layout.Family;
    /// <summary>"built-in sd21-v" or the --config folder.</summary>
    public string ConfigSource { get; }
    public string PredictionType { get; }
    public string PredictionTypeReason { get; }
    public ConfigJson ModelIndex { get; }

    /// <summary>The components this checkpoint provides (SDXL adds text_encoder_2 and tokenizer_2).</summary>
    public IReadOnlyList<string> Components { get; }

    private SingleFileCheckpoint(ITensorSource file, SingleFileOptions options)
    {
        File = file;
        Layout = SingleFileLayout.Detect(file);
        Components = Layout.Family == ModelFamily.StableDiffusionXL
            ? ["unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"]
            : ["unet", "vae", "text_encoder", "tokenizer", "scheduler"];
        if (options.PredictionType is string p && !PredictionTypes.Contains(p))
            throw new ArgumentException($"prediction type '{p}' is not one of {string.Join(", ", PredictionTypes)}");
        var (guess, reason) = Layout.GuessPredictionType(file);
        // Tokenizers come from the built-in set of the family unless the config folder has its own.
        _builtIn = BuiltInConfigs.For(Layout.Family, guess);
        if (options.ConfigDir is string dir)
        {
            _configFolder = DiffusersModelFolder.Open(dir);
            var folderFamily = _configFolder.DetectFamily();
            if (folderFamily != Layout.Family)
                throw new CheckpointLayoutException($"{file.Path} holds an {DiffusersModelFolder.FamilyName(Layout.Family)} checkpoint but the --config folder {_configFolder.Root} describes {DiffusersModelFolder.FamilyName(folderFamily)}");
            ConfigSource = _configFolder.Root;
            ModelIndex = ConfigJson.Load(Path.Combine(_configFolder.Root, "model_index.json"));
            var folderPrediction = _configFolder.ComponentConfig("scheduler", "scheduler_config.json").OptionalString("prediction_type") ?? "epsilon";
            (PredictionType, PredictionTypeReason) = options.PredictionType is string o ? (o, "--prediction-type") : (folderPrediction, "the --config folder's scheduler");
        }
        else
        {
            var type = options.PredictionType ?? guess;
            _builtInConfigs = BuiltInConfigs.For(Layout.Family, type);
            ConfigSource = "built-in " + _builtInConfigs.Id;
            ModelIndex = _builtInConfigs.Config("model_index");
            (PredictionType, PredictionTypeReason) = options.PredictionType is string o ? (o, "--prediction-type") : (guess, reason);
        }
    }

    /// <summary>Opens a file through <see cref="TensorSourceFactory"/> and detects its layout.</summary>
    public static SingleFileCheckpoint Open(string path, SingleFileOptions? options = null)
    {
        var file = TensorSourceFactory.Open(path);
        try { return new SingleFileCheckpoint(file, options ?? new SingleFileOptions()); }
        catch { file.Dispose(); throw; }
    }

    /// <summary>A checkpoint over an already open source (it is disposed with the checkpoint).</summary>
    public static SingleFileCheckpoint FromSource(ITensorSource file, SingleFileOptions? options = null)
    {
        try { return new SingleFileCheckpoint(file, options ?? new SingleFileOptions()); }
        catch { file.Dispose(); throw; }
    }

    public bool Has(string component) => Components.Contains(component);

    public ConfigJson Config(string component)
    {
        if (!Has(component) || component.StartsWith("tokenizer", StringComparison.Ordinal))
            throw new InvalidDataException($"{Source}: no '{component}' config for an {DiffusersModelFolder.FamilyName(Family)} checkpoint");
        if (_configFolder is not null)
        {
            var c = _configFolder.ComponentConfig(component, component == "scheduler" ? "scheduler_config.json" : "config.json");
            return component == "scheduler" ? WithPrediction(c, PredictionType) : c;
        }
        var builtIn = _builtInConfigs!.Config(component);
        return component == "scheduler" ? WithPrediction(builtIn, PredictionType) : builtIn;
    }

    private static ConfigJson WithPrediction(ConfigJson c, string prediction)
    {
        if (c.OptionalString("prediction_type") == prediction) return c;
        var node = JsonNode.Parse(c.Root.GetRawText())!.AsObject();
        node["prediction_type"] = prediction;
        return ConfigJson.Parse(node.ToJsonString(), $"{c.Source} (prediction_type {prediction})");
    }

    public ClipTokenizer Tokenizer(string component)
    {
        if (component is not ("tokenizer" or "tokenizer_2") || !Has(component))
            throw new InvalidDataException($"{Source}: no '{component}' for an {DiffusersModelFolder.FamilyName(Family)} checkpoint");
        if (_configFolder is not null && _configFolder.Has(component) && Directory.Exists(Path.Combine(_configFolder.Root, component)))
            return ClipTokenizer.FromFolder(_configFolder.ComponentDir(component));
        return _builtIn.Tokenizer(component);
    }

    /// <summary>The tokenizer spec of the built-in set (for writing tokenizer files into a converted folder).</summary>
    internal System.Text.Json.JsonElement BuiltInTokenizerSpec(string component) => BuiltInConfigs.TokenizerSpec(_builtIn, component);

    internal DiffusersModelFolder? ConfigFolder => _configFolder;

    public IReadOnlyList<ITensorSource> Weights(string component, string? variant = null) => [KeyMap(component).Bind(File)];

    /// <summary>The key map of a network component, built from its config (names and shapes from the meta device).</summary>
    public ComponentKeyMap KeyMap(string component)
    {
        if (_maps.TryGetValue(component, out var map)) return map;
        var (built, network) = ComponentKeyMaps.Build(component, Config(component), Layout);
        network.Dispose();
        map = built;
        if (map.Unmapped.Count > 0)
            throw new InvalidDataException($"{Source}: {map.Unmapped.Count} {component} tensor(s) have no place in the original layout: {string.Join(", ", map.Unmapped.Take(10))}");
        _maps[component] = map;
        return map;
    }

    /// <summary>The component maps of every network the checkpoint holds.</summary>
    public IReadOnlyList<ComponentKeyMap> KeyMaps() =>
        Components.Where(c => !c.StartsWith("tokenizer", StringComparison.Ordinal) && c != "scheduler").Select(KeyMap).ToList();

    /// <summary>Keys that belong to no component (EMA copies, the DDPM schedule buffers, ...): ignored.</summary>
    public IReadOnlyList<string> OtherKeys()
    {
        var maps = KeyMaps();
        return File.Entries.Keys.Where(k => !maps.Any(m => m.Owns(k))).OrderBy(k => k, StringComparer.Ordinal).ToList();
    }

    public void Dispose() => File.Dispose();
}
