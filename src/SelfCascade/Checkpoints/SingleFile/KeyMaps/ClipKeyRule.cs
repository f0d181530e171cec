using System.Text.RegularExpressions;

namespace SelfCascade.Checkpoints.SingleFile.KeyMaps;

/// <summary>
/// OpenAI CLIP text encoders as the original files hold them (SD 1.x <c>cond_stage_model.transformer.*</c>, SDXL
/// <c>conditioner.embedders.0.transformer.*</c>): the transformers names with their <c>text_model.</c> prefix, as
/// diffusers' <c>convert_ldm_clip_checkpoint</c> strips them. Our CLIPTextModel has transformers 5's unprefixed
/// names, so the prefix is put back; <c>embeddings.position_ids</c> (a buffer some files hold) is ignored.
/// </summary>
public sealed class OpenAiClipKeyRule : IOriginalKeyRule
{
    public KeyMapping? Map(string name) =>
        new(name, name.StartsWith("text_model.", StringComparison.Ordinal) || name.StartsWith("text_projection", StringComparison.Ordinal)
            ? name : "text_model." + name);

    public bool IsIgnorable(string originalKey) => originalKey == "text_model.embeddings.position_ids";
}

/// <summary>
/// OpenCLIP text encoders (SD 2.x <c>cond_stage_model.model.*</c>, SDXL <c>conditioner.embedders.1.model.*</c>), as
/// diffusers v0.28.2's <c>convert_open_clip_checkpoint</c> and the <c>textenc_conversion_lst</c> of the reverse
/// scripts: <c>transformer.resblocks.{L}</c> = <c>encoder.layers.{L}</c> (<c>ln_1/ln_2</c>, <c>mlp.c_fc/c_proj</c>,
/// <c>attn.out_proj</c>), the fused <c>attn.in_proj_weight/bias</c> = [q; k; v] split in three equal parts along
/// dim 0 (by the tensor's own size: diffusers 0.28 splits by the projection width, which is the same number for the
/// released models), <c>token_embedding</c>, <c>positional_embedding</c>, <c>ln_final</c> = final_layer_norm, and
/// <c>text_projection</c> = the transposed <c>text_projection.weight</c> (SDXL's bigG). Layers at or past the
/// config's <c>num_hidden_layers</c> and an unused <c>text_projection</c> are ignored: SD 2.x files hold 24 layers
/// and a projection, while the encoder diffusers builds stops at the penultimate layer (23) with no projection
/// (<c>SD_2_TEXT_ENCODER_KEYS_TO_IGNORE</c>); <c>logit_scale</c> belongs to CLIP's image side.
/// </summary>
public sealed partial class OpenClipKeyRule(int numLayers, bool withProjection) : IOriginalKeyRule
{
    private static readonly Dictionary<string, string> LayerParts = new(StringComparer.Ordinal)
    {
        ["layer_norm1"] = "ln_1", ["layer_norm2"] = "ln_2", ["mlp.fc1"] = "mlp.c_fc", ["mlp.fc2"] = "mlp.c_proj",
        ["self_attn.out_proj"] = "attn.out_proj",
    };

    public KeyMapping? Map(string name)
    {
        var n = name.StartsWith("text_model.", StringComparison.Ordinal) ? name["text_model.".Length..] : name;
        switch (n)
        {
            case "embeddings.token_embedding.weight": return new(name, "token_embedding.weight");
            case "embeddings.position_embedding.weight": return new(name, "positional_embedding");
            case "final_layer_norm.weight": return new(name, "ln_final.weight");
            case "final_layer_norm.bias": return new(name, "ln_final.bias");
            case "text_projection.weight": return new(name, "text_projection", TensorTransform.Transpose);
        }
        var m = Layer().Match(n);
        if (!m.Success) return null;
        var (layer, part, leaf) = (m.Groups[1].Value, m.Groups[2].Value, m.Groups[3].Value);
        var res = $"transformer.resblocks.{layer}.";
        if (part is "self_attn.q_proj" or "self_attn.k_proj" or "self_attn.v_proj")
            return new(name, res + "attn.in_proj_" + leaf, TensorTransform.FusedPart, "qkv".IndexOf(part[10]), 3);
        return LayerParts.TryGetValue(part, out var orig) ? new(name, res + orig + "." + leaf) : null;
    }

    public bool IsIgnorable(string originalKey)
    {
        if (originalKey == "logit_scale" || originalKey == "attn_mask") return true;
        if (originalKey == "text_projection") return !withProjection;
        var m = ResBlock().Match(originalKey);
        return m.Success && int.TryParse(m.Groups[1].Value, out int l) && l >= numLayers;
    }

    [GeneratedRegex(@"^encoder\.layers\.(\d+)\.(layer_norm1|layer_norm2|mlp\.fc1|mlp\.fc2|self_attn\.q_proj|self_attn\.k_proj|self_attn\.v_proj|self_attn\.out_proj)\.(weight|bias)$")]
    private static partial Regex Layer();
    [GeneratedRegex(@"^transformer\.resblocks\.(\d+)\.")] private static partial Regex ResBlock();
}
