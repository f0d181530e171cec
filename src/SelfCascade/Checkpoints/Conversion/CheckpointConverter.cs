using System.Text.Json;
using System.Text.Json.Nodes;
using SelfCascade.Checkpoints.SingleFile;
using SelfCascade.Checkpoints.SingleFile.KeyMaps;
using SelfCascade.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Checkpoints.Conversion;

/// <summary>
/// Writes a single file as a diffusers folder and a diffusers folder as a single file (ComfyUI / A1111 layout),
/// streaming one tensor at a time. Single -> folder -> single gives the same key set and the same tensors: the
/// keys a diffusers folder has no place for (SD 2.x's 24th OpenCLIP layer, EMA copies, schedule buffers) travel in
/// <see cref="ExtraKeysFile"/> and are written back.
/// </summary>
public static class CheckpointConverter
{
    /// <summary>Original keys that have no diffusers home, kept beside model_index.json for the way back.</summary>
    public const string ExtraKeysFile = "original_extra_keys.safetensors";

    private static readonly Dictionary<string, (string Library, string Class)> Classes = new()
    {
        ["unet"] = ("diffusers", "UNet2DConditionModel"), ["vae"] = ("diffusers", "AutoencoderKL"),
        ["text_encoder"] = ("transformers", "CLIPTextModel"), ["text_encoder_2"] = ("transformers", "CLIPTextModelWithProjection"),
        ["tokenizer"] = ("transformers", "CLIPTokenizer"), ["tokenizer_2"] = ("transformers", "CLIPTokenizer"),
    };

    /// <summary>A single-file checkpoint as a diffusers folder (model_index.json, configs, safetensors, tokenizer files).</summary>
    /// <param name="dtype">Convert the weights (fp16 halves the folder); null keeps the file's dtypes.</param>
    public static void ToDiffusersFolder(SingleFileCheckpoint checkpoint, string outDir, ScalarType? dtype = null, IProgress<string>? progress = null)
    {
        if (System.IO.File.Exists(Path.Combine(outDir, "model_index.json")))
            throw new IOException($"{outDir} already holds a model (model_index.json); choose an empty folder");
        Directory.CreateDirectory(outDir);
        var index = JsonNode.Parse(checkpoint.ModelIndex.Root.GetRawText())!.AsObject();
        foreach (var component in checkpoint.Components)
        {
            var dir = Path.Combine(outDir, component);
            Directory.CreateDirectory(dir);
            if (component.StartsWith("tokenizer", StringComparison.Ordinal))
            {
                WriteTokenizer(checkpoint, component, dir);
                index[component] = new JsonArray(Classes[component].Library, Classes[component].Class);
                continue;
            }
            var config = checkpoint.Config(component);
            if (component == "scheduler")
            {
                System.IO.File.WriteAllText(Path.Combine(dir, "scheduler_config.json"), Pretty(config.Root));
                index[component] = new JsonArray("diffusers", config.OptionalString("_class_name") ?? "DDIMScheduler");
                continue;
            }
            System.IO.File.WriteAllText(Path.Combine(dir, "config.json"), Pretty(config.Root));
            var map = checkpoint.KeyMap(component);
            using var source = map.Bind(checkpoint.File);
            bool text = component.StartsWith("text_encoder", StringComparison.Ordinal);
            // transformers 4.x and hub folders name CLIPTextModel tensors text_model.*; write them that way so Python tools read the folder.
            string Out(string name) => text && !name.StartsWith("text_model.", StringComparison.Ordinal) && !name.StartsWith("text_projection", StringComparison.Ordinal) ? "text_model." + name : name;
            var unexpected = source.Entries.Keys.Where(k => map.Owns(k)).ToList();
            if (unexpected.Count > 0)
                throw new InvalidDataException($"{checkpoint.Source}: {component} keys with no diffusers place: {string.Join(", ", unexpected.Take(10))}");
            var missing = map.Tensors.Where(t => !source.Entries.ContainsKey(t.Mapping.Target)).Select(t => t.Mapping.Source).ToList();
            if (missing.Count > 0)
                throw new InvalidDataException($"{checkpoint.Source}: {missing.Count} {component} key(s) missing: {string.Join(", ", missing.Take(10))}");
            var entries = source.Entries.Values.Select(e => (Out(e.Name), dtype ?? e.ScalarType, e.Shape)).ToList();
            var back = source.Entries.Keys.ToDictionary(Out, k => k);
            var file = Path.Combine(dir, text ? "model.safetensors" : "diffusion_pytorch_model.safetensors");
            SafeTensorsWriter.SaveStreaming(file, entries, name => source.Read(back[name], dtype));
            index[component] = new JsonArray(Classes[component].Library, config.OptionalString("_class_name") is string cls && component.StartsWith("unet") ? cls : Classes[component].Class);
            progress?.Report(component);
        }
        WriteExtras(checkpoint, outDir, dtype);
        index["_class_name"] ??= checkpoint.Family == ModelFamily.StableDiffusionXL ? "StableDiffusionXLPipeline" : "StableDiffusionPipeline";
        System.IO.File.WriteAllText(Path.Combine(outDir, "model_index.json"), index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    private static void WriteExtras(SingleFileCheckpoint checkpoint, string outDir, ScalarType? dtype)
    {
        var maps = checkpoint.KeyMaps();
        var used = maps.SelectMany(m => m.SourceKeys).ToHashSet(StringComparer.Ordinal);
        var extra = checkpoint.File.Entries.Values.Where(e => !used.Contains(e.Name)).ToList();
        if (extra.Count == 0) return;
        SafeTensorsWriter.SaveStreaming(Path.Combine(outDir, ExtraKeysFile),
            extra.Select(e => (e.Name, Convertible(e.ScalarType) ? dtype ?? e.ScalarType : e.ScalarType, e.Shape)).ToList(),
            name => checkpoint.File.Read(name, Convertible(checkpoint.File.Entries[name].ScalarType) ? dtype : null));
    }

    private static bool Convertible(ScalarType t) => t is ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float64;

    private static void WriteTokenizer(SingleFileCheckpoint checkpoint, string component, string dir)
    {
        if (checkpoint.ConfigFolder is DiffusersModelFolder f && f.Has(component) && Directory.Exists(Path.Combine(f.Root, component)))
        {
            foreach (var file in Directory.GetFiles(f.ComponentDir(component)))
                System.IO.File.Copy(file, Path.Combine(dir, Path.GetFileName(file)), overwrite: true);
            return;
        }
        foreach (var (name, bytes) in BuiltInConfigs.TokenizerFiles(checkpoint.BuiltInTokenizerSpec(component)))
            System.IO.File.WriteAllBytes(Path.Combine(dir, name), bytes);
    }

    private static string Pretty(JsonElement e) => JsonSerializer.Serialize(e, new JsonSerializerOptions { WriteIndented = true });

    /// <summary>
    /// A component set (a diffusers folder) as one file in the original layout, as diffusers' conversion scripts
    /// write it (<c>convert_diffusers_to_original_stable_diffusion.py</c>, <c>_sdxl.py</c>): renamed keys, the VAE
    /// attention as 1x1 convs, OpenCLIP's q/k/v fused into <c>in_proj</c>, <c>text_projection</c> transposed; plus
    /// the folder's <see cref="ExtraKeysFile"/> when it came from a single file.
    /// </summary>
    public static void ToSingleFile(IModelComponents model, string outFile, ScalarType? dtype = null, IProgress<string>? progress = null)
    {
        if (model.Family == ModelFamily.Unknown) throw new InvalidDataException($"{model.Source}: not a Stable Diffusion model");
        var te = model.Config("text_encoder");
        var layout = ComponentKeyMaps.LayoutOf(model.Family, te.OptionalString("hidden_act") == "gelu");
        var writers = new Dictionary<string, Func<ScalarType?, Tensor>>(StringComparer.Ordinal);
        var entries = new List<(string, ScalarType, long[])>();
        var disposables = new List<IDisposable>();
        try
        {
            foreach (var component in ComponentKeyMaps.Networks(layout))
            {
                var (map, network) = ComponentKeyMaps.Build(component, model.Config(component), layout);
                disposables.Add(network);
                var sources = model.Weights(component);
                // The folder's names as the network knows them (legacy names normalised the way loading does).
                var byTarget = Resolve(network, sources, model.Source, component);
                foreach (var group in map.Tensors.GroupBy(t => t.Mapping.Source))
                {
                    var parts = group.OrderBy(t => t.Mapping.Part).ToList();
                    var first = byTarget[parts[0].Mapping.Target];
                    var fileType = first.Source.Entries[first.Key].ScalarType;
                    var outType = dtype ?? fileType;
                    long[] shape = OriginalShape(parts.Select(p => p.Mapping).ToList(), parts[0].Shape);
                    entries.Add((group.Key, outType, shape));
                    writers[group.Key] = t => Produce(parts.Select(p => (p.Mapping, byTarget[p.Mapping.Target])).ToList(), shape, t ?? outType);
                }
            }
            var extrasPath = model is FolderComponents fc ? Path.Combine(fc.Folder.Root, ExtraKeysFile) : null;
            if (extrasPath is not null && System.IO.File.Exists(extrasPath))
            {
                var extras = SafeTensorsFile.Open(extrasPath);
                disposables.Add(extras);
                foreach (var e in extras.Entries.Values)
                {
                    if (writers.ContainsKey(e.Name)) throw new InvalidDataException($"{extrasPath}: key '{e.Name}' is also a network tensor");
                    var outType = Convertible(e.ScalarType) ? dtype ?? e.ScalarType : e.ScalarType;
                    entries.Add((e.Name, outType, e.Shape));
                    writers[e.Name] = _ => extras.Read(e.Name, outType);
                }
            }
            SafeTensorsWriter.SaveStreaming(outFile, entries, name => writers[name](null));
            progress?.Report(outFile);
        }
        finally
        {
            foreach (var d in disposables) d.Dispose();
        }
    }

    private static Dictionary<string, (ITensorSource Source, string Key)> Resolve(nn.Module network, IReadOnlyList<ITensorSource> sources, string where, string component)
    {
        var report = WeightLoader.Check(network, sources);
        if (!report.Ok) throw new WeightLoadException(report);
        var legacy = network as ILegacyKeyMap;
        var expected = network.state_dict().Keys.ToHashSet(StringComparer.Ordinal);
        var result = new Dictionary<string, (ITensorSource, string)>(StringComparer.Ordinal);
        foreach (var s in sources)
            foreach (var key in s.Entries.Keys)
            {
                var target = expected.Contains(key) ? key : legacy?.MapLegacyKey(key) ?? key;
                if (expected.Contains(target)) result[target] = (s, key);
            }
        return result;
    }

    private static long[] OriginalShape(IReadOnlyList<KeyMapping> parts, long[] diffusersShape) => parts[0].Transform switch
    {
        TensorTransform.Reshape => diffusersShape.Length == 1 ? diffusersShape : [.. diffusersShape, 1, 1],
        TensorTransform.Transpose => [diffusersShape[1], diffusersShape[0]],
        TensorTransform.FusedPart => [diffusersShape[0] * parts[0].Parts, .. diffusersShape[1..]],
        _ => diffusersShape,
    };

    private static Tensor Produce(IReadOnlyList<(KeyMapping Mapping, (ITensorSource Source, string Key) From)> parts, long[] shape, ScalarType dtype)
    {
        var m = parts[0].Mapping;
        if (m.Transform == TensorTransform.FusedPart)
        {
            if (parts.Count != m.Parts) throw new InvalidDataException($"{m.Source}: {parts.Count} of {m.Parts} fused parts present");
            var pieces = parts.Select(p => p.From.Source.Read(p.From.Key, dtype)).ToList();
            try { return torch.cat(pieces, 0); }
            finally { foreach (var p in pieces) p.Dispose(); }
        }
        using var t = parts[0].From.Source.Read(parts[0].From.Key, dtype);
        return m.Transform switch
        {
            TensorTransform.Reshape => t.reshape(shape).clone(),
            TensorTransform.Transpose => t.t().contiguous(),
            _ => t.reshape(shape).clone(),
        };
    }
}
