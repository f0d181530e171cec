using System.Text.Json;

namespace SelfCascade.IO;

/// <summary>Which Stable Diffusion family a folder holds, detected from its configs (never from names).</summary>
public enum ModelFamily
{
    Unknown,
    /// <summary>SD 1.x: CLIP ViT-L text encoder, 1x1-conv transformer projections.</summary>
    StableDiffusion1,
    /// <summary>SD 2.x: OpenCLIP ViT-H text encoder (gelu), linear projections.</summary>
    StableDiffusion2,
    /// <summary>SDXL: two text encoders and the text_time addition embedding.</summary>
    StableDiffusionXL,
}

/// <summary>One entry of model_index.json: `"unet": ["diffusers", "UNet2DConditionModel"]`.</summary>
public sealed record ModelComponent(string Name, string? Library, string ClassName, string Directory);

/// <summary>
/// A diffusers pipeline folder: `model_index.json` naming the components, one sub-folder each
/// (`unet/config.json` + weights, `scheduler/scheduler_config.json`, `tokenizer/vocab.json`…).
/// </summary>
public sealed class DiffusersModelFolder
{
    public string Root { get; }
    public string? PipelineClass { get; }
    public IReadOnlyDictionary<string, ModelComponent> Components { get; }

    private DiffusersModelFolder(string root, string? pipelineClass, Dictionary<string, ModelComponent> components)
    {
        Root = root; PipelineClass = pipelineClass; Components = components;
    }

    public static DiffusersModelFolder Open(string dir)
    {
        if (string.IsNullOrWhiteSpace(dir)) throw new ArgumentException("no model folder given");
        var root = Path.GetFullPath(dir);
        if (!System.IO.Directory.Exists(root)) throw new DirectoryNotFoundException($"{root}: model folder not found");
        var indexPath = Path.Combine(root, "model_index.json");
        if (!File.Exists(indexPath))
            throw new FileNotFoundException($"{root}: no model_index.json (not a diffusers pipeline folder)", indexPath);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(indexPath), new JsonDocumentOptions { AllowTrailingCommas = true }); }
        catch (JsonException e) { throw new ConfigException($"{indexPath}: not valid JSON ({e.Message})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new ConfigException($"{indexPath}: not a JSON object");
            string? cls = doc.RootElement.TryGetProperty("_class_name", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
            var comps = new Dictionary<string, ModelComponent>(StringComparer.Ordinal);
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name.StartsWith('_')) continue;
                // Optional components are stored as [null, null]; other non-array values are pipeline options.
                if (p.Value.ValueKind != JsonValueKind.Array || p.Value.GetArrayLength() != 2) continue;
                var lib = p.Value[0].ValueKind == JsonValueKind.String ? p.Value[0].GetString() : null;
                var klass = p.Value[1].ValueKind == JsonValueKind.String ? p.Value[1].GetString() : null;
                if (klass is null) continue;
                comps[p.Name] = new ModelComponent(p.Name, lib, klass, Path.Combine(root, p.Name));
            }
            return new DiffusersModelFolder(root, cls, comps);
        }
    }

    public bool Has(string component) => Components.ContainsKey(component);

    /// <summary>The component's folder; a clear error when model_index.json lacks it or the folder is absent.</summary>
    public string ComponentDir(string component)
    {
        if (!Components.TryGetValue(component, out var c))
            throw new InvalidDataException($"{Root}: model_index.json has no '{component}' component");
        if (!System.IO.Directory.Exists(c.Directory))
            throw new DirectoryNotFoundException($"{Root}: component folder '{component}/' is missing");
        return c.Directory;
    }

    public ConfigJson ComponentConfig(string component, string fileName = "config.json") =>
        ConfigJson.Load(Path.Combine(ComponentDir(component), fileName));

    /// <summary>
    /// Family from the configs: SDXL has the UNet's `text_time` addition embedding; SD 2.x uses linear transformer
    /// projections and an OpenCLIP (gelu) text encoder; otherwise SD 1.x.
    /// </summary>
    public ModelFamily DetectFamily()
    {
        if (!Has("unet")) return ModelFamily.Unknown;
        var unet = ComponentConfig("unet");
        return DetectFamily(unet, Has("text_encoder") ? ComponentConfig("text_encoder") : null);
    }

    public static ModelFamily DetectFamily(ConfigJson unetConfig, ConfigJson? textEncoderConfig)
    {
        if (unetConfig.OptionalString("addition_embed_type") == "text_time") return ModelFamily.StableDiffusionXL;
        bool linear = unetConfig.Has("use_linear_projection") && unetConfig.Bool("use_linear_projection", false);
        bool openClip = textEncoderConfig?.OptionalString("hidden_act") == "gelu";
        return linear || openClip ? ModelFamily.StableDiffusion2 : ModelFamily.StableDiffusion1;
    }

    public static string FamilyName(ModelFamily f) => f switch
    {
        ModelFamily.StableDiffusion1 => "SD 1.x",
        ModelFamily.StableDiffusion2 => "SD 2.x",
        ModelFamily.StableDiffusionXL => "SDXL",
        _ => "unknown",
    };
}
