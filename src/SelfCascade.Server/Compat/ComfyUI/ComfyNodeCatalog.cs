using System.Text.Json.Nodes;

namespace SelfCascade.Server.Compat.ComfyUI;

/// <summary>
/// One input of a node as ComfyUI declares it in INPUT_TYPES: a primitive (INT, FLOAT, STRING, BOOLEAN) with options
/// (default/min/max/step), a combo (a list of allowed strings), or a link type (MODEL, CLIP, VAE, CONDITIONING,
/// LATENT, IMAGE, MASK) that must come from another node's output.
/// </summary>
public sealed record ComfyInputSpec(string Name, string Type, JsonObject? Options = null, IReadOnlyList<string>? Choices = null)
{
    public bool IsCombo => Choices is not null;
    public bool IsPrimitive => Type is "INT" or "FLOAT" or "STRING" or "BOOLEAN";
    public bool IsLink => !IsCombo && !IsPrimitive;

    /// <summary>The /object_info form: <c>["INT", {...}]</c>, <c>[["a","b"], {...}]</c> or <c>["MODEL"]</c>.</summary>
    public JsonArray ToJson()
    {
        var a = new JsonArray(IsCombo ? new JsonArray(Choices!.Select(c => (JsonNode?)JsonValue.Create(c)).ToArray()) : JsonValue.Create(Type));
        if (Options is { Count: > 0 }) a.Add(Options.DeepClone());
        return a;
    }
}

/// <summary>A node class as /object_info describes it.</summary>
public sealed record ComfyNodeSpec(
    string ClassType, string DisplayName, string Category, string Description,
    IReadOnlyList<ComfyInputSpec> Required, IReadOnlyList<ComfyInputSpec> Optional,
    IReadOnlyList<string> Outputs, IReadOnlyList<string> OutputNames, bool IsOutputNode)
{
    public ComfyInputSpec? Input(string name) =>
        Required.FirstOrDefault(i => i.Name == name) ?? Optional.FirstOrDefault(i => i.Name == name);

    /// <summary>ComfyUI's node_info(): input, input_order, output, output_is_list, output_name, name, display_name, ...</summary>
    public JsonObject ToObjectInfo()
    {
        var input = new JsonObject { ["required"] = Inputs(Required) };
        if (Optional.Count > 0) input["optional"] = Inputs(Optional);
        var order = new JsonObject { ["required"] = Names(Required) };
        if (Optional.Count > 0) order["optional"] = Names(Optional);
        return new JsonObject
        {
            ["input"] = input,
            ["input_order"] = order,
            ["output"] = Strings(Outputs),
            ["output_is_list"] = new JsonArray(Outputs.Select(_ => (JsonNode?)JsonValue.Create(false)).ToArray()),
            ["output_name"] = Strings(OutputNames),
            ["name"] = ClassType,
            ["display_name"] = DisplayName,
            ["description"] = Description,
            ["python_module"] = ClassType == ComfyNodeCatalog.SelfCascadeNode ? "custom_nodes.selfcascade" : "nodes",
            ["category"] = Category,
            ["output_node"] = IsOutputNode,
        };

        static JsonObject Inputs(IReadOnlyList<ComfyInputSpec> list)
        {
            var o = new JsonObject();
            foreach (var i in list) o[i.Name] = i.ToJson();
            return o;
        }
        static JsonArray Names(IReadOnlyList<ComfyInputSpec> list) => Strings(list.Select(i => i.Name).ToList());
        static JsonArray Strings(IReadOnlyList<string> s) => new(s.Select(x => (JsonNode?)JsonValue.Create(x)).ToArray());
    }
}

/// <summary>What the catalog lists from the running server: file names and limits.</summary>
public sealed record ComfyCatalogContext
{
    /// <summary>Model names CheckpointLoaderSimple offers (the server's --model names).</summary>
    public IReadOnlyList<string> Checkpoints { get; init; } = [];
    /// <summary>Uploaded images LoadImage offers (names under the input folder).</summary>
    public IReadOnlyList<string> InputImages { get; init; } = [];
    /// <summary>Feature-upsampler sets the SelfCascade node offers besides "none".</summary>
    public IReadOnlyList<string> Upsamplers { get; init; } = [];
    /// <summary>LoRA names LoraLoader offers (the server's --lora names).</summary>
    public IReadOnlyList<string> Loras { get; init; } = [];
    /// <summary>Largest side in pixels (ComfyUI's MAX_RESOLUTION is 16384; a server bounds memory with less).</summary>
    public int MaxResolution { get; init; } = 4096;
    /// <summary>Largest batch of EmptyLatentImage (ComfyUI: 4096).</summary>
    public int MaxBatch { get; init; } = 8;
    /// <summary>Largest step count of KSampler (ComfyUI: 10000).</summary>
    public int MaxSteps { get; init; } = 1000;
}

/// <summary>
/// The node classes this server executes, with ComfyUI's input names, types, defaults and bounds (nodes.py), so
/// existing API-format workflows validate and run unchanged. <see cref="SelfCascadeNode"/> is our own.
/// </summary>
public sealed class ComfyNodeCatalog
{
    public const string SelfCascadeNode = "SelfCascade";
    public static readonly IReadOnlyList<string> UpscaleMethods = ["nearest-exact", "bilinear", "area", "bicubic"];
    public const string NoUpsamplers = "none";

    private readonly Dictionary<string, ComfyNodeSpec> _nodes;
    public ComfyCatalogContext Context { get; }

    public ComfyNodeCatalog(ComfyCatalogContext context)
    {
        Context = context;
        _nodes = Build(context).ToDictionary(n => n.ClassType);
    }

    public IReadOnlyCollection<ComfyNodeSpec> Nodes => _nodes.Values;
    public ComfyNodeSpec? Find(string classType) => _nodes.GetValueOrDefault(classType);

    /// <summary>The whole /object_info answer.</summary>
    public JsonObject ObjectInfo()
    {
        var o = new JsonObject();
        foreach (var n in _nodes.Values) o[n.ClassType] = n.ToObjectInfo();
        return o;
    }

    private static JsonObject Int(long def, long min, long max, long step = 1) =>
        new() { ["default"] = def, ["min"] = min, ["max"] = max, ["step"] = step };
    private static JsonObject Float(double def, double min, double max, double step, double? round = null)
    {
        var o = new JsonObject { ["default"] = def, ["min"] = min, ["max"] = max, ["step"] = step };
        if (round is double r) o["round"] = r;
        return o;
    }

    private static IEnumerable<ComfyNodeSpec> Build(ComfyCatalogContext c)
    {
        ComfyInputSpec L(string name, string type) => new(name, type);
        var seed = new ComfyInputSpec("seed", "INT", new JsonObject { ["default"] = 0, ["min"] = 0, ["max"] = ulong.MaxValue });
        var steps = new ComfyInputSpec("steps", "INT", Int(20, 1, c.MaxSteps));
        var cfg = new ComfyInputSpec("cfg", "FLOAT", Float(8.0, 0.0, 100.0, 0.1, 0.01));
        var sampler = new ComfyInputSpec("sampler_name", "COMBO", Choices: ComfySamplers.SamplerNames);
        var scheduler = new ComfyInputSpec("scheduler", "COMBO", Choices: ComfySamplers.SchedulerNames);
        int max = c.MaxResolution;

        yield return new ComfyNodeSpec("CheckpointLoaderSimple", "Load Checkpoint", "loaders",
            "Loads a model of this server (its --model names).",
            [new ComfyInputSpec("ckpt_name", "COMBO", Choices: c.Checkpoints)], [],
            ["MODEL", "CLIP", "VAE"], ["MODEL", "CLIP", "VAE"], false);
        yield return new ComfyNodeSpec("LoraLoader", "Load LoRA", "loaders",
            "Applies a LoRA of this server (its --lora names) to the MODEL (UNet, strength_model) and the CLIP (text encoders, strength_clip).",
            [L("model", "MODEL"), L("clip", "CLIP"), new ComfyInputSpec("lora_name", "COMBO", Choices: c.Loras),
             new("strength_model", "FLOAT", Float(1.0, -100.0, 100.0, 0.01)), new("strength_clip", "FLOAT", Float(1.0, -100.0, 100.0, 0.01))], [],
            ["MODEL", "CLIP"], ["MODEL", "CLIP"], false);
        yield return new ComfyNodeSpec("CLIPTextEncode", "CLIP Text Encode (Prompt)", "conditioning",
            "A prompt; encoded by the sampling model's text encoder(s).",
            [new ComfyInputSpec("text", "STRING", new JsonObject { ["multiline"] = true, ["dynamicPrompts"] = true }), L("clip", "CLIP")], [],
            ["CONDITIONING"], ["CONDITIONING"], false);
        yield return new ComfyNodeSpec("EmptyLatentImage", "Empty Latent Image", "latent",
            "An empty latent of the given pixel size; its shape follows the model that samples it.",
            [new("width", "INT", Int(512, 16, max, 8)), new("height", "INT", Int(512, 16, max, 8)), new("batch_size", "INT", Int(1, 1, c.MaxBatch))], [],
            ["LATENT"], ["LATENT"], false);
        yield return new ComfyNodeSpec("KSampler", "KSampler", "sampling",
            "Denoises a latent. denoise < 1 is img2img strength: the last `steps` steps of a int(steps/denoise)-step schedule.",
            [L("model", "MODEL"), seed, steps, cfg, sampler, scheduler, L("positive", "CONDITIONING"), L("negative", "CONDITIONING"),
             L("latent_image", "LATENT"), new("denoise", "FLOAT", Float(1.0, 0.0, 1.0, 0.01))], [],
            ["LATENT"], ["LATENT"], false);
        yield return new ComfyNodeSpec("LatentUpscale", "Upscale Latent", "latent", "Resizes a latent to a pixel size.",
            [L("samples", "LATENT"), new("upscale_method", "COMBO", Choices: UpscaleMethods), new("width", "INT", Int(512, 0, max, 8)),
             new("height", "INT", Int(512, 0, max, 8)), new("crop", "COMBO", Choices: ["disabled", "center"])], [],
            ["LATENT"], ["LATENT"], false);
        yield return new ComfyNodeSpec("LatentUpscaleBy", "Upscale Latent By", "latent", "Resizes a latent by a factor.",
            [L("samples", "LATENT"), new("upscale_method", "COMBO", Choices: UpscaleMethods), new("scale_by", "FLOAT", Float(1.5, 0.01, 8.0, 0.01))], [],
            ["LATENT"], ["LATENT"], false);
        yield return new ComfyNodeSpec("VAEDecode", "VAE Decode", "latent", "Latent to image (the identity for a pixel-space model).",
            [L("samples", "LATENT"), L("vae", "VAE")], [], ["IMAGE"], ["IMAGE"], false);
        yield return new ComfyNodeSpec("VAEEncode", "VAE Encode", "latent", "Image to latent (the posterior mean).",
            [L("pixels", "IMAGE"), L("vae", "VAE")], [], ["LATENT"], ["LATENT"], false);
        yield return new ComfyNodeSpec("LoadImage", "Load Image", "image", "An image uploaded with /upload/image.",
            [new ComfyInputSpec("image", "COMBO", new JsonObject { ["image_upload"] = true }, c.InputImages)], [],
            ["IMAGE", "MASK"], ["IMAGE", "MASK"], false);
        yield return new ComfyNodeSpec("SaveImage", "Save Image", "image", "Saves the images to the output folder.",
            [L("images", "IMAGE"), new("filename_prefix", "STRING", new JsonObject { ["default"] = "ComfyUI" })], [],
            [], [], true);
        yield return new ComfyNodeSpec("PreviewImage", "Preview Image", "image", "Saves the images to the temp folder.",
            [L("images", "IMAGE")], [], [], [], true);
        yield return new ComfyNodeSpec(SelfCascadeNode, "Self-Cascade Upscale", "sampling",
            "Self-Cascade (Guo et al., ECCV 2024): from a clean base latent to the target size in stages of at most 2x per side; " +
            "each stage upsamples the previous latent (bilinear), re-noises it at pivot_strength (0 = the model's default) " +
            "with seed + stage and denoises; optional time-aware feature upsamplers.",
            [L("model", "MODEL"), seed, steps, cfg, sampler, scheduler, L("positive", "CONDITIONING"), L("negative", "CONDITIONING"),
             L("samples", "LATENT"), new("width", "INT", Int(1024, 16, max, 8)), new("height", "INT", Int(1024, 16, max, 8)),
             new("pivot_strength", "FLOAT", Float(0.0, 0.0, 1.0, 0.01)),
             new("upsamplers", "COMBO", Choices: [NoUpsamplers, .. c.Upsamplers])], [],
            ["LATENT"], ["LATENT"], false);
    }
}
