using System.Text.Json;
using System.Text.Json.Nodes;
using SelfCascade.IO;
using SelfCascade.Models.Clip;
using SelfCascade.Models.Unet;

namespace SelfCascade.Training;

/// <summary>
/// The shape of a small pixel-space base model: a diffusers UNet2DConditionModel config (in/out channels 3) and a
/// transformers CLIPTextModel config (vocabulary of the CLIP tokenizer, 49,408), both as the JSON written into the
/// exported folder. Built-in presets or a JSON file <c>{"unet": {...}, "text_encoder": {...}}</c>.
/// </summary>
public sealed class BaseModelPreset
{
    public static readonly string[] Names = ["tiny", "small", "emoji"];

    public string Name { get; }
    public JsonObject UnetJson { get; }
    public JsonObject TextEncoderJson { get; }

    private BaseModelPreset(string name, JsonObject unet, JsonObject text)
    {
        Name = name; UnetJson = unet; TextEncoderJson = text;
    }

    /// <summary>The UNet config for images of <paramref name="size"/> pixels (sample_size = size).</summary>
    public UNet2DConditionConfig UnetConfig(int size) => UNet2DConditionConfig.FromJson(ConfigJson.Parse(UnetJsonFor(size).ToJsonString(), $"{Name}/unet"));

    public JsonObject UnetJsonFor(int size)
    {
        var j = (JsonObject)UnetJson.DeepClone();
        j["sample_size"] = size;
        return j;
    }

    public ClipTextConfig TextConfig()
    {
        var json = ConfigJson.Parse(TextEncoderJson.ToJsonString(), $"{Name}/text_encoder");
        var c = ClipTextConfig.From(json, withProjection: false);
        json.ThrowIfInvalid();
        return c;
    }

    /// <summary>A built-in preset by name, or a JSON file path.</summary>
    public static BaseModelPreset Resolve(string nameOrPath)
    {
        if (Names.Contains(nameOrPath)) return Builtin(nameOrPath);
        if (!File.Exists(nameOrPath))
            throw new ArgumentException($"preset '{nameOrPath}' is neither a built-in one ({string.Join(", ", Names)}) nor a JSON file");
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(nameOrPath)); }
        catch (JsonException e) { throw new ConfigException($"{nameOrPath}: not valid JSON ({e.Message})"); }
        if (root is not JsonObject o || o["unet"] is not JsonObject unet || o["text_encoder"] is not JsonObject text)
            throw new ConfigException($"{nameOrPath}: expected an object with 'unet' and 'text_encoder' objects");
        var preset = new BaseModelPreset(Path.GetFileNameWithoutExtension(nameOrPath), Normalise(unet), NormaliseText(text));
        preset.Validate();
        return preset;
    }

    public static BaseModelPreset Builtin(string name) => name switch
    {
        // ~2.4 M UNet parameters + a 2-layer, 64-wide text encoder (3.2 M of its 3.3 M are the token table).
        "tiny" => new BaseModelPreset(name,
            Unet([32, 64, 128], layers: 1, heads: [2, 4, 8], crossDim: 64, groups: 8),
            Text(hidden: 64, layers: 2, heads: 4)),
        // The embedded model's shape: tiny's widths without attention at full resolution, so a 4x cascade to 128 px
        // stays cheap on a CPU (16,384 tokens of self-attention per layer would dominate every step there).
        "emoji" => new BaseModelPreset(name,
            Unet([32, 64, 128], layers: 1, heads: [2, 4, 8], crossDim: 64, groups: 8,
                down: ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                up: ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"]),
            Text(hidden: 64, layers: 2, heads: 4)),
        "small" => new BaseModelPreset(name,
            Unet([64, 128, 256], layers: 2, heads: [4, 8, 8], crossDim: 128, groups: 16),
            Text(hidden: 128, layers: 4, heads: 4)),
        _ => throw new ArgumentException($"unknown preset '{name}'; built-in presets: {string.Join(", ", Names)}"),
    };

    private void Validate()
    {
        var unet = UnetConfig(32);
        var text = TextConfig();
        var problems = new List<string>();
        if (unet.InChannels != 3 || unet.OutChannels != 3) problems.Add($"unet in/out channels must be 3 (pixel space), got {unet.InChannels}/{unet.OutChannels}");
        if (unet.CrossAttentionDim.Any(d => d != text.HiddenSize)) problems.Add($"unet cross_attention_dim [{string.Join(",", unet.CrossAttentionDim)}] must equal the text encoder's hidden_size {text.HiddenSize}");
        if (unet.HasTextTimeEmbedding) problems.Add("text_time (SDXL) conditioning is not supported for base training");
        if (text.VocabSize != 49408) problems.Add($"text encoder vocab_size {text.VocabSize} must be the CLIP tokenizer's 49408");
        if (text.MaxPositionEmbeddings < ClipTokenizer.DefaultModelMaxLength) problems.Add($"text encoder max_position_embeddings {text.MaxPositionEmbeddings} must be ≥ 77");
        if (problems.Count > 0) throw new ConfigException($"preset {Name}: " + string.Join("; ", problems));
    }

    private static JsonObject Unet(int[] channels, int layers, int[] heads, int crossDim, int groups, string[]? down = null, string[]? up = null) => Normalise(new JsonObject
    {
        ["block_out_channels"] = new JsonArray(channels.Select(c => (JsonNode)c).ToArray()),
        ["layers_per_block"] = layers,
        ["attention_head_dim"] = new JsonArray(heads.Select(c => (JsonNode)c).ToArray()),
        ["cross_attention_dim"] = crossDim,
        ["norm_num_groups"] = groups,
        ["down_block_types"] = new JsonArray((down ?? ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]).Select(b => (JsonNode)b!).ToArray()),
        ["up_block_types"] = new JsonArray((up ?? ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]).Select(b => (JsonNode)b!).ToArray()),
    });

    /// <summary>Adds diffusers' class name and the keys this project's pixel-space model fixes.</summary>
    private static JsonObject Normalise(JsonObject unet)
    {
        var j = new JsonObject
        {
            ["_class_name"] = "UNet2DConditionModel",
            ["_diffusers_version"] = "0.40.0.dev0",
            ["in_channels"] = 3,
            ["out_channels"] = 3,
            ["act_fn"] = "silu",
            ["center_input_sample"] = false,
            ["flip_sin_to_cos"] = true,
            ["freq_shift"] = 0,
            ["downsample_padding"] = 1,
            ["mid_block_scale_factor"] = 1,
            ["mid_block_type"] = "UNetMidBlock2DCrossAttn",
            ["norm_eps"] = 1e-5,
            ["transformer_layers_per_block"] = 1,
            ["use_linear_projection"] = true,
            ["upcast_attention"] = false,
            ["dropout"] = 0.0,
        };
        foreach (var (k, v) in unet) j[k] = v?.DeepClone();
        return j;
    }

    private static JsonObject Text(int hidden, int layers, int heads) => NormaliseText(new JsonObject
    {
        ["hidden_size"] = hidden,
        ["intermediate_size"] = hidden * 4,
        ["num_hidden_layers"] = layers,
        ["num_attention_heads"] = heads,
    });

    private static JsonObject NormaliseText(JsonObject text)
    {
        var j = new JsonObject
        {
            ["architectures"] = new JsonArray("CLIPTextModel"),
            ["model_type"] = "clip_text_model",
            ["vocab_size"] = 49408,
            ["max_position_embeddings"] = 77,
            ["hidden_act"] = "quick_gelu",
            ["layer_norm_eps"] = 1e-5,
            ["attention_dropout"] = 0.0,
            ["initializer_factor"] = 1.0,
            ["initializer_range"] = 0.02,
            ["bos_token_id"] = 49406,
            ["eos_token_id"] = 49407,
            ["pad_token_id"] = 1,
            ["projection_dim"] = 512,
        };
        foreach (var (k, v) in text) j[k] = v?.DeepClone();
        return j;
    }
}
