using SelfCascade.IO;

namespace SelfCascade.Checkpoints.SingleFile;

/// <summary>Not a checkpoint this loader understands: one message listing what the file holds.</summary>
public sealed class CheckpointLayoutException(string message) : IOException(message);

/// <summary>
/// Where each component sits in an original-layout (CompVis / Stability) single file, detected from the keys and
/// shapes as diffusers v0.28.2 does (<c>single_file_utils.CHECKPOINT_KEY_NAMES</c>, <c>infer_diffusers_model_type</c>):
/// <c>conditioner.embedders.1.model.*</c> (OpenCLIP-bigG) = SDXL base with CLIP-L at <c>conditioner.embedders.0.transformer.*</c>;
/// <c>cond_stage_model.model.*</c> (OpenCLIP-H) = SD 2.x; <c>cond_stage_model.transformer.*</c> (CLIP-L) = SD 1.x;
/// the UNet under <c>model.diffusion_model.*</c>, the VAE under <c>first_stage_model.*</c>.
/// </summary>
public sealed record SingleFileLayout(ModelFamily Family, string TextEncoderPrefix, bool TextEncoderOpenClip, string? TextEncoder2Prefix)
{
    public const string UnetPrefix = "model.diffusion_model.";
    public const string VaePrefix = "first_stage_model.";
    public const string Sd1TextPrefix = "cond_stage_model.transformer.";
    public const string Sd2TextPrefix = "cond_stage_model.model.";
    public const string XlText1Prefix = "conditioner.embedders.0.transformer.";
    public const string XlText2Prefix = "conditioner.embedders.1.model.";
    private const string XlRefinerPrefix = "conditioner.embedders.0.model.";

    public static SingleFileLayout Detect(ITensorSource file)
    {
        var keys = file.Entries.Keys;
        bool Any(string prefix) => keys.Any(k => k.StartsWith(prefix, StringComparison.Ordinal));
        bool unet = Any(UnetPrefix), vae = Any(VaePrefix);
        SingleFileLayout? layout = null;
        if (Any(XlText2Prefix) && Any(XlText1Prefix)) layout = new(ModelFamily.StableDiffusionXL, XlText1Prefix, false, XlText2Prefix);
        else if (Any(XlRefinerPrefix))
            throw new CheckpointLayoutException($"{file.Path}: an SDXL refiner checkpoint (conditioner.embedders.0.model.*): only SD 1.x, SD 2.x and SDXL base are supported");
        else if (Any(Sd2TextPrefix)) layout = new(ModelFamily.StableDiffusion2, Sd2TextPrefix, true, null);
        else if (Any(Sd1TextPrefix)) layout = new(ModelFamily.StableDiffusion1, Sd1TextPrefix, false, null);
        if (layout is null || !unet || !vae)
        {
            var missing = new List<string>();
            if (!unet) missing.Add(UnetPrefix + "*");
            if (!vae) missing.Add(VaePrefix + "*");
            if (layout is null) missing.Add($"{Sd1TextPrefix}* / {Sd2TextPrefix}* / {XlText1Prefix}* + {XlText2Prefix}*");
            throw new CheckpointLayoutException(
                $"{file.Path}: not a Stable Diffusion checkpoint in the original single-file layout (no {string.Join(", no ", missing)}); " +
                $"it holds {file.Entries.Count} tensors: {DescribePrefixes(keys)}");
        }
        if (file.Entries.TryGetValue(UnetPrefix + "input_blocks.0.0.weight", out var convIn) && convIn.Shape.Length == 4 && convIn.Shape[1] != 4)
            throw new CheckpointLayoutException($"{file.Path}: the UNet takes {convIn.Shape[1]} input channels (an inpainting or depth model); only text-to-image models (4 channels) are supported");
        return layout;
    }

    /// <summary>"model.diffusion_model (686), first_stage_model (248), ..." — the top-level groups of a key set.</summary>
    public static string DescribePrefixes(IEnumerable<string> keys, int max = 12)
    {
        var groups = keys.GroupBy(Group).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal).ToList();
        var shown = groups.Take(max).Select(g => $"{g.Key} ({g.Count()})");
        return groups.Count == 0 ? "nothing" : string.Join(", ", shown) + (groups.Count > max ? $", and {groups.Count - max} more groups" : "");
    }

    private static string Group(string key)
    {
        var parts = key.Split('.');
        int take = parts[0] is "model" or "conditioner" or "cond_stage_model" ? Math.Min(2, parts.Length - 1) : 1;
        if (parts[0] == "conditioner" && parts.Length > 3) take = 3;
        return string.Join('.', parts.Take(Math.Max(1, take)));
    }

    /// <summary>
    /// The prediction type diffusers would assume: epsilon for SD 1.x and SDXL; for SD 2.x v_prediction (the 768
    /// model) unless the file says otherwise. diffusers reads a <c>global_step</c> of 875000 as the 512-base model;
    /// a safetensors file has none, so here the Stability "modelspec" metadata is read when present.
    /// </summary>
    public (string Type, string Reason) GuessPredictionType(ITensorSource file)
    {
        if (Family != ModelFamily.StableDiffusion2) return ("epsilon", "SD 1.x and SDXL predict noise");
        if (file is SafeTensorsFile st)
        {
            if (st.Metadata.TryGetValue("modelspec.prediction_type", out var p))
                return (p.Contains('v') && !p.Contains("eps") ? "v_prediction" : "epsilon", $"file metadata modelspec.prediction_type = {p}");
            if (st.Metadata.TryGetValue("modelspec.architecture", out var a))
                return (a.Contains("768-v", StringComparison.Ordinal) ? "v_prediction" : "epsilon", $"file metadata modelspec.architecture = {a}");
        }
        return ("v_prediction", "SD 2.x guessed as the 768 v-prediction model, as diffusers does without a global_step of 875000; give --prediction-type epsilon for 2.x-base");
    }
}
