using SelfCascade.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Models.Clip;

/// <summary>
/// A CLIP text encoder matching transformers 5.17 <c>CLIPTextModel</c> or, when
/// <see cref="ClipTextConfig.WithProjection"/>, <c>CLIPTextModelWithProjection</c>, with their state-dict names:
/// <list type="bullet">
/// <item><c>CLIPTextModel</c> (5.x): <c>embeddings.token_embedding.weight</c>, <c>encoder.layers.0.self_attn.q_proj.weight</c>,
/// <c>final_layer_norm.weight</c>, ... (no prefix). Checkpoints written by transformers 4.x and the SD hub folders
/// carry a <c>text_model.</c> prefix; it is mapped away on load, as transformers 5 does.</item>
/// <item><c>CLIPTextModelWithProjection</c>: <c>text_model.embeddings.token_embedding.weight</c>, ...,
/// <c>text_projection.weight</c> (Linear, no bias).</item>
/// </list>
/// The ignorable <c>[text_model.]embeddings.position_ids</c> key of older checkpoints is dropped.
/// </summary>
public sealed class ClipTextModel : nn.Module, ILegacyKeyMap
{
    private const string LegacyPrefix = "text_model.";

    private readonly ClipTextTransformer _text;
    private readonly Linear? _projection;

    public ClipTextConfig Config { get; }

    /// <summary>
    /// Builds the network with freshly initialised weights, every parameter created directly on
    /// <paramref name="device"/> in <paramref name="dtype"/> (default: TorchSharp's defaults). On
    /// <c>torch.META</c> it allocates no tensor memory (for shape checks of full-size configs).
    /// </summary>
    public ClipTextModel(ClipTextConfig config, Device? device = null, ScalarType? dtype = null) : base(config.WithProjection ? "CLIPTextModelWithProjection" : "CLIPTextModel")
    {
        config.Validate();
        Config = config;
        _text = new ClipTextTransformer(config, device, dtype);
        if (config.WithProjection)
        {
            register_module("text_model", _text);
            _projection = nn.Linear(config.HiddenSize, config.ProjectionDim, hasBias: false, device: device, dtype: dtype);
            register_module("text_projection", _projection);
        }
        else
        {
            // transformers 5.x CLIPTextModel has the text transformer's children at the top level.
            foreach (var (name, child) in _text.named_children()) register_module(name, child);
        }
    }

    /// <summary>
    /// Loads a transformers text-encoder folder (<c>config.json</c> + <c>model[.variant].safetensors</c> or shards),
    /// creating parameters on <paramref name="device"/> in <paramref name="dtype"/> and streaming weights into them
    /// (converted on the way). Whether the folder holds the with-projection class comes from <c>architectures</c> /
    /// <c>_class_name</c>, else from a <c>text_projection.weight</c> key in the weights. The model is returned in
    /// eval mode with gradients off (a frozen encoder). Throws <see cref="ConfigException"/> listing every config
    /// problem, or <see cref="WeightLoadException"/> listing every missing, unexpected and mis-shaped key.
    /// </summary>
    /// <summary>Set by sequential offload: the device the token ids go to while the weights live on the CPU.</summary>
    public Device? ExecutionDevice { get; set; }

    public static ClipTextModel FromPretrained(string componentDir, Device? device = null, ScalarType? dtype = null, string? variant = null)
    {
        var json = ConfigJson.Load(Path.Combine(componentDir, "config.json"));
        var files = WeightLoader.ResolveWeightFiles(componentDir, variant);
        // Problems DeclaredWithProjection records are reported by ThrowIfInvalid below.
        bool projection = ClipTextConfig.DeclaredWithProjection(json)
            ?? files.Any(f => SafeTensorsFile.ReadEntries(f).Any(e => e.Key is "text_projection.weight"));
        var config = ClipTextConfig.From(json, withProjection: projection);
        json.ThrowIfInvalid();
        var model = new ClipTextModel(config, device, dtype);
        try
        {
            WeightLoader.Load(model, files);
            foreach (var p in model.parameters()) p.requires_grad = false;
            model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Builds the encoder from a config.json and streams weights from open tensor sources (a folder's files, or a
    /// single-file checkpoint's text encoder seen through its key map); the with-projection class is chosen as
    /// <see cref="FromPretrained"/> does. The sources stay open.
    /// </summary>
    public static ClipTextModel FromWeights(ConfigJson json, IReadOnlyList<ITensorSource> sources, Device? device = null, ScalarType? dtype = null)
    {
        bool projection = ClipTextConfig.DeclaredWithProjection(json)
            ?? sources.Any(s => s.Entries.ContainsKey("text_projection.weight"));
        var config = ClipTextConfig.From(json, withProjection: projection);
        json.ThrowIfInvalid();
        var model = new ClipTextModel(config, device, dtype);
        try
        {
            WeightLoader.Load(model, sources);
            foreach (var p in model.parameters()) p.requires_grad = false;
            model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Encodes (batch, seq) token ids (any integer dtype, any device: they are moved to the model's device).
    /// <paramref name="outputHiddenStates"/> keeps every layer's output (transformers <c>output_hidden_states=True</c>);
    /// without it only the last and penultimate states are kept. Runs in a dispose scope; only the returned tensors
    /// survive.
    /// </summary>
    public ClipTextOutput Forward(Tensor inputIds, bool outputHiddenStates = false)
    {
        if (inputIds.dim() is < 1 or > 2) throw new ArgumentException($"input ids must be (batch, seq) or (seq), got [{string.Join(",", inputIds.shape)}]", nameof(inputIds));
        using var scope = NewDisposeScope();
        var device = ExecutionDevice ?? parameters().First().device;
        var ids = inputIds.view(-1, inputIds.shape[^1]).to(ScalarType.Int64, device);
        var hidden = outputHiddenStates ? new List<Tensor>() : null;
        var (last, penultimate, pooled) = _text.Run(ids, hidden);
        var textEmbeds = _projection?.call(pooled);
        var keep = new List<Tensor> { last, penultimate, pooled };
        if (textEmbeds is not null) keep.Add(textEmbeds);
        if (hidden is not null) keep.AddRange(hidden);
        scope.MoveToOuter(keep.Distinct(ReferenceEqualityComparer.Instance).Cast<IDisposable>());
        return new ClipTextOutput(last, penultimate, pooled, textEmbeds, hidden);
    }

    /// <summary>Number of parameter elements (123,060,480 for CLIP ViT-L/14's text model).</summary>
    public long ParameterCount() => parameters().Sum(p => p.numel());

    string? ILegacyKeyMap.MapLegacyKey(string key) =>
        !Config.WithProjection && key.StartsWith(LegacyPrefix, StringComparison.Ordinal) ? key[LegacyPrefix.Length..] : null;

    bool ILegacyKeyMap.IsIgnorableKey(string key) =>
        key is "text_model.embeddings.position_ids" or "embeddings.position_ids";
}
