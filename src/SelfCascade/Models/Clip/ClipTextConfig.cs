using SelfCascade.IO;

namespace SelfCascade.Models.Clip;

/// <summary>
/// The text-encoder part of a transformers <c>CLIPTextConfig</c> (<c>config.json</c> of an SD <c>text_encoder</c>
/// folder). Shapes come from here only; <see cref="WithProjection"/> picks the transformers class
/// (<c>CLIPTextModelWithProjection</c> vs <c>CLIPTextModel</c>), whose state-dict layouts differ.
/// </summary>
public sealed record ClipTextConfig
{
    /// <summary>Activations transformers' ACT2FN offers that a CLIP text config uses.</summary>
    public static readonly IReadOnlyList<string> SupportedActivations = ["quick_gelu", "gelu", "gelu_pytorch_tanh"];

    public const string TextModelClass = "CLIPTextModel";
    public const string WithProjectionClass = "CLIPTextModelWithProjection";

    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int NumHiddenLayers { get; init; }
    public required int NumAttentionHeads { get; init; }
    public required int MaxPositionEmbeddings { get; init; }
    public string HiddenAct { get; init; } = "quick_gelu";
    public double LayerNormEps { get; init; } = 1e-5;
    /// <summary>Output size of <c>text_projection</c> (used only <see cref="WithProjection"/>).</summary>
    public int ProjectionDim { get; init; } = 512;
    public int EosTokenId { get; init; } = 49407;
    public int BosTokenId { get; init; } = 49406;
    public int PadTokenId { get; init; } = 1;
    /// <summary>True for transformers' <c>CLIPTextModelWithProjection</c> (SDXL <c>text_encoder_2</c>).</summary>
    public bool WithProjection { get; init; }

    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>Reads <c>config.json</c>; throws <see cref="ConfigException"/> listing every problem at once.</summary>
    public static ClipTextConfig Load(string path)
    {
        var json = ConfigJson.Load(path);
        var config = From(json);
        json.ThrowIfInvalid();
        return config;
    }

    /// <summary>
    /// Reads the keys from <paramref name="json"/>, recording problems there (call <c>json.ThrowIfInvalid()</c>).
    /// Shape keys are required; the rest default as transformers' <c>CLIPTextConfig</c> does. Unknown keys are ignored.
    /// <paramref name="withProjection"/> overrides what <c>architectures</c> / <c>_class_name</c> say (absent both: false).
    /// </summary>
    public static ClipTextConfig From(ConfigJson json, bool? withProjection = null)
    {
        if (json.Has("text_config"))
            json.Problem("this is a full CLIPModel config (nested 'text_config'); point at a text encoder folder");
        bool projection = withProjection ?? DeclaredWithProjection(json) ?? false;
        var c = new ClipTextConfig
        {
            VocabSize = json.Int("vocab_size", min: 1),
            HiddenSize = json.Int("hidden_size", min: 1),
            IntermediateSize = json.Int("intermediate_size", min: 1),
            NumHiddenLayers = json.Int("num_hidden_layers", min: 1),
            NumAttentionHeads = json.Int("num_attention_heads", min: 1),
            MaxPositionEmbeddings = json.Int("max_position_embeddings", min: 1),
            HiddenAct = json.String("hidden_act", "quick_gelu"),
            LayerNormEps = json.Double("layer_norm_eps", 1e-5, min: 0),
            // The projection size is a shape: required when the model has the projection.
            ProjectionDim = json.Int("projection_dim", projection ? null : 512, min: 1),
            EosTokenId = json.Int("eos_token_id", 49407, min: 0),
            BosTokenId = json.Int("bos_token_id", 49406, min: 0),
            PadTokenId = json.OptionalInt("pad_token_id") ?? 1,
            WithProjection = projection,
        };
        // Missing keys and out-of-range values are already recorded by ConfigJson; add the cross-key checks.
        foreach (var p in c.Problems(includeRanges: false)) json.Problem(p);
        return c;
    }

    /// <summary>Impossible combinations of values (each a readable sentence); empty when the config is usable.</summary>
    public IReadOnlyList<string> Problems(bool includeRanges = true)
    {
        var problems = new List<string>();
        if (includeRanges)
        {
            (string Key, int Value)[] sizes = [("vocab_size", VocabSize), ("hidden_size", HiddenSize), ("intermediate_size", IntermediateSize),
                ("num_hidden_layers", NumHiddenLayers), ("num_attention_heads", NumAttentionHeads),
                ("max_position_embeddings", MaxPositionEmbeddings), ("projection_dim", WithProjection ? ProjectionDim : 1)];
            foreach (var (key, value) in sizes)
                if (value < 1) problems.Add($"'{key}' = {value} must be at least 1");
        }
        if (NumAttentionHeads > 0 && HiddenSize > 0 && HiddenSize % NumAttentionHeads != 0)
            problems.Add($"'hidden_size' = {HiddenSize} is not divisible by 'num_attention_heads' = {NumAttentionHeads}");
        if (VocabSize > 0 && EosTokenId >= VocabSize)
            problems.Add($"'eos_token_id' = {EosTokenId} is not below 'vocab_size' = {VocabSize}");
        if (!SupportedActivations.Contains(HiddenAct))
            problems.Add($"'hidden_act' = '{HiddenAct}' is not one of {string.Join(", ", SupportedActivations)}");
        return problems;
    }

    /// <summary>Throws <see cref="ConfigException"/> when <see cref="Problems"/> finds any (for configs built in code).</summary>
    public void Validate()
    {
        var p = Problems();
        if (p.Count > 0) throw new ConfigException($"CLIP text config: {p.Count} problem(s): " + string.Join("; ", p));
    }

    /// <summary>
    /// Whether the config names the with-projection class (<c>architectures</c> or <c>_class_name</c>); null when it
    /// names no class. Records a problem for a class that is neither CLIP text model.
    /// </summary>
    public static bool? DeclaredWithProjection(ConfigJson json)
    {
        var names = new List<string>();
        if (json.Has("architectures")) names.AddRange(json.StringList("architectures"));
        if (json.OptionalString("_class_name") is string cls) names.Add(cls);
        var unknown = names.Where(n => n is not (TextModelClass or WithProjectionClass)).ToList();
        if (unknown.Count > 0)
            json.Problem($"architecture {string.Join(", ", unknown.Select(n => $"'{n}'"))} is not {TextModelClass} or {WithProjectionClass}");
        if (names.Count == 0) return null;
        return names.Contains(WithProjectionClass);
    }
}
