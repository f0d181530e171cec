using System.Text.Json.Nodes;

namespace SelfCascade.Tests.Server.Compat;

/// <summary>API-format workflows as ComfyUI's "Save (API format)" writes them, for the tests.</summary>
public static class ComfyWorkflows
{
    /// <summary>
    /// txt2img at base size, then LatentUpscaleBy(bilinear, 2) + KSampler(denoise) = the "hires fix" graph:
    /// 4 checkpoint, 6/7 prompts, 5 empty latent, 3 base KSampler, 10 upscale, 11 second KSampler, 8 decode, 9 save.
    /// </summary>
    public static JsonObject HiresFix(string ckpt, string prompt, long seed, int baseSize, int baseSteps, double cfg,
        int hiresSteps, double denoise, string sampler = "ddim", string scheduler = "normal", string negative = "", int batch = 1) => new()
    {
        ["4"] = Node("CheckpointLoaderSimple", new() { ["ckpt_name"] = ckpt }),
        ["6"] = Node("CLIPTextEncode", new() { ["text"] = prompt, ["clip"] = Link("4", 1) }),
        ["7"] = Node("CLIPTextEncode", new() { ["text"] = negative, ["clip"] = Link("4", 1) }),
        ["5"] = Node("EmptyLatentImage", new() { ["width"] = baseSize, ["height"] = baseSize, ["batch_size"] = batch }),
        ["3"] = Node("KSampler", new()
        {
            ["seed"] = seed, ["steps"] = baseSteps, ["cfg"] = cfg, ["sampler_name"] = sampler, ["scheduler"] = scheduler, ["denoise"] = 1.0,
            ["model"] = Link("4", 0), ["positive"] = Link("6", 0), ["negative"] = Link("7", 0), ["latent_image"] = Link("5", 0),
        }),
        ["10"] = Node("LatentUpscaleBy", new() { ["upscale_method"] = "bilinear", ["scale_by"] = 2.0, ["samples"] = Link("3", 0) }),
        ["11"] = Node("KSampler", new()
        {
            ["seed"] = seed + 1, ["steps"] = hiresSteps, ["cfg"] = cfg, ["sampler_name"] = sampler, ["scheduler"] = scheduler, ["denoise"] = denoise,
            ["model"] = Link("4", 0), ["positive"] = Link("6", 0), ["negative"] = Link("7", 0), ["latent_image"] = Link("10", 0),
        }),
        ["8"] = Node("VAEDecode", new() { ["samples"] = Link("11", 0), ["vae"] = Link("4", 2) }),
        ["9"] = Node("SaveImage", new() { ["filename_prefix"] = "hires", ["images"] = Link("8", 0) }),
    };

    public static JsonObject Node(string classType, JsonObject inputs) => new() { ["class_type"] = classType, ["inputs"] = inputs };
    public static JsonArray Link(string id, int slot) => new(JsonValue.Create(id), JsonValue.Create(slot));
}
