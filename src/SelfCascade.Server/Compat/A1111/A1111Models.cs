using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace SelfCascade.Server.Compat.A1111;

/// <summary>
/// The fields of A1111's StableDiffusionProcessing that both txt2img and img2img take (modules/processing.py and
/// modules/api/models.py), with A1111's JSON names and defaults. Fields this server ignores are still accepted and
/// echoed back in "parameters", as A1111 does (docs/SERVER-COMPAT.md lists what is mapped).
/// </summary>
public abstract class A1111ProcessingRequest
{
    [JsonPropertyName("prompt")] public string Prompt { get; set; } = "";
    [JsonPropertyName("negative_prompt")] public string NegativePrompt { get; set; } = "";
    [JsonPropertyName("styles")] public List<string>? Styles { get; set; }
    [JsonPropertyName("seed")] public long Seed { get; set; } = -1;
    [JsonPropertyName("subseed")] public long Subseed { get; set; } = -1;
    [JsonPropertyName("subseed_strength")] public double SubseedStrength { get; set; }
    [JsonPropertyName("seed_resize_from_h")] public int SeedResizeFromH { get; set; } = -1;
    [JsonPropertyName("seed_resize_from_w")] public int SeedResizeFromW { get; set; } = -1;
    [JsonPropertyName("sampler_name")] public string? SamplerName { get; set; }
    [JsonPropertyName("scheduler")] public string? Scheduler { get; set; }
    [JsonPropertyName("batch_size")] public int BatchSize { get; set; } = 1;
    [JsonPropertyName("n_iter")] public int NIter { get; set; } = 1;
    [JsonPropertyName("steps")] public int Steps { get; set; } = 50;
    [JsonPropertyName("cfg_scale")] public double CfgScale { get; set; } = 7.0;
    [JsonPropertyName("width")] public int Width { get; set; } = 512;
    [JsonPropertyName("height")] public int Height { get; set; } = 512;
    [JsonPropertyName("restore_faces")] public bool? RestoreFaces { get; set; }
    [JsonPropertyName("tiling")] public bool? Tiling { get; set; }
    [JsonPropertyName("do_not_save_samples")] public bool DoNotSaveSamples { get; set; }
    [JsonPropertyName("do_not_save_grid")] public bool DoNotSaveGrid { get; set; }
    [JsonPropertyName("eta")] public double? Eta { get; set; }
    [JsonPropertyName("denoising_strength")] public double? DenoisingStrength { get; set; }
    [JsonPropertyName("s_min_uncond")] public double? SMinUncond { get; set; }
    [JsonPropertyName("s_churn")] public double? SChurn { get; set; }
    [JsonPropertyName("s_tmax")] public double? STmax { get; set; }
    [JsonPropertyName("s_tmin")] public double? STmin { get; set; }
    [JsonPropertyName("s_noise")] public double? SNoise { get; set; }
    [JsonPropertyName("override_settings")] public Dictionary<string, JsonElement>? OverrideSettings { get; set; }
    [JsonPropertyName("override_settings_restore_afterwards")] public bool OverrideSettingsRestoreAfterwards { get; set; } = true;
    [JsonPropertyName("refiner_checkpoint")] public string? RefinerCheckpoint { get; set; }
    [JsonPropertyName("refiner_switch_at")] public double? RefinerSwitchAt { get; set; }
    [JsonPropertyName("disable_extra_networks")] public bool DisableExtraNetworks { get; set; }
    [JsonPropertyName("comments")] public Dictionary<string, JsonElement>? Comments { get; set; }
    [JsonPropertyName("sampler_index")] public string SamplerIndex { get; set; } = "Euler";
    [JsonPropertyName("script_name")] public string? ScriptName { get; set; }
    [JsonPropertyName("script_args")] public List<JsonElement> ScriptArgs { get; set; } = [];
    [JsonPropertyName("send_images")] public bool SendImages { get; set; } = true;
    [JsonPropertyName("save_images")] public bool SaveImages { get; set; }
    [JsonPropertyName("alwayson_scripts")] public Dictionary<string, JsonElement> AlwaysonScripts { get; set; } = [];
    [JsonPropertyName("force_task_id")] public string? ForceTaskId { get; set; }
    [JsonPropertyName("infotext")] public string? Infotext { get; set; }

    /// <summary>The sampler asked: sampler_name, else sampler_index (A1111: <c>sampler_name or sampler_index</c>).</summary>
    [JsonIgnore] public string Sampler => string.IsNullOrEmpty(SamplerName) ? SamplerIndex : SamplerName;

    /// <summary><c>override_settings.sd_model_checkpoint</c>, when given as a string.</summary>
    [JsonIgnore]
    public string? CheckpointOverride =>
        OverrideSettings is not null && OverrideSettings.TryGetValue("sd_model_checkpoint", out var v) && v.ValueKind == JsonValueKind.String
            ? v.GetString() : null;
}

/// <summary>POST /sdapi/v1/txt2img (StableDiffusionProcessingTxt2Img + the API's extra keys).</summary>
public sealed class A1111Txt2ImgRequest : A1111ProcessingRequest
{
    public A1111Txt2ImgRequest() => DenoisingStrength = 0.75;

    [JsonPropertyName("enable_hr")] public bool EnableHr { get; set; }
    [JsonPropertyName("firstphase_width")] public int FirstphaseWidth { get; set; }
    [JsonPropertyName("firstphase_height")] public int FirstphaseHeight { get; set; }
    [JsonPropertyName("hr_scale")] public double HrScale { get; set; } = 2.0;
    [JsonPropertyName("hr_upscaler")] public string? HrUpscaler { get; set; }
    [JsonPropertyName("hr_second_pass_steps")] public int HrSecondPassSteps { get; set; }
    [JsonPropertyName("hr_resize_x")] public int HrResizeX { get; set; }
    [JsonPropertyName("hr_resize_y")] public int HrResizeY { get; set; }
    [JsonPropertyName("hr_checkpoint_name")] public string? HrCheckpointName { get; set; }
    [JsonPropertyName("hr_sampler_name")] public string? HrSamplerName { get; set; }
    [JsonPropertyName("hr_scheduler")] public string? HrScheduler { get; set; }
    [JsonPropertyName("hr_prompt")] public string HrPrompt { get; set; } = "";
    [JsonPropertyName("hr_negative_prompt")] public string HrNegativePrompt { get; set; } = "";
}

/// <summary>POST /sdapi/v1/img2img (StableDiffusionProcessingImg2Img + the API's extra keys).</summary>
public sealed class A1111Img2ImgRequest : A1111ProcessingRequest
{
    public A1111Img2ImgRequest() => DenoisingStrength = 0.75;

    [JsonPropertyName("init_images")] public List<string>? InitImages { get; set; }
    [JsonPropertyName("resize_mode")] public int ResizeMode { get; set; }
    [JsonPropertyName("image_cfg_scale")] public double? ImageCfgScale { get; set; }
    [JsonPropertyName("mask")] public string? Mask { get; set; }
    [JsonPropertyName("mask_blur_x")] public int MaskBlurX { get; set; } = 4;
    [JsonPropertyName("mask_blur_y")] public int MaskBlurY { get; set; } = 4;
    [JsonPropertyName("mask_blur")] public int? MaskBlur { get; set; }
    [JsonPropertyName("mask_round")] public bool MaskRound { get; set; } = true;
    [JsonPropertyName("inpainting_fill")] public int InpaintingFill { get; set; }
    [JsonPropertyName("inpaint_full_res")] public bool InpaintFullRes { get; set; } = true;
    [JsonPropertyName("inpaint_full_res_padding")] public int InpaintFullResPadding { get; set; }
    [JsonPropertyName("inpainting_mask_invert")] public int InpaintingMaskInvert { get; set; }
    [JsonPropertyName("initial_noise_multiplier")] public double? InitialNoiseMultiplier { get; set; }
    [JsonPropertyName("latent_mask")] public string? LatentMask { get; set; }
    [JsonPropertyName("include_init_images")] public bool IncludeInitImages { get; set; }
}

/// <summary>TextToImageResponse / ImageToImageResponse: base64 PNGs, the request echoed, and <c>info</c> = Processed.js() as a JSON string.</summary>
public sealed class A1111ImageResponse
{
    [JsonPropertyName("images")] public List<string> Images { get; set; } = [];
    [JsonPropertyName("parameters")] public JsonObject Parameters { get; set; } = new();
    [JsonPropertyName("info")] public string Info { get; set; } = "";
}

/// <summary>ProgressResponse of GET /sdapi/v1/progress.</summary>
public sealed class A1111ProgressResponse
{
    [JsonPropertyName("progress")] public double Progress { get; set; }
    [JsonPropertyName("eta_relative")] public double EtaRelative { get; set; }
    [JsonPropertyName("state")] public JsonObject State { get; set; } = new();
    [JsonPropertyName("current_image")] public string? CurrentImage { get; set; }
    [JsonPropertyName("textinfo")] public string? TextInfo { get; set; }
}

/// <summary>SDModelItem of GET /sdapi/v1/sd-models.</summary>
public sealed record A1111ModelItem(
    [property: JsonPropertyName("title")] string Title,
    [property: JsonPropertyName("model_name")] string ModelName,
    [property: JsonPropertyName("hash")] string? Hash,
    [property: JsonPropertyName("sha256")] string? Sha256,
    [property: JsonPropertyName("filename")] string Filename,
    [property: JsonPropertyName("config")] string? Config);

/// <summary>SamplerItem of GET /sdapi/v1/samplers.</summary>
public sealed record A1111SamplerItem(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("aliases")] IReadOnlyList<string> Aliases,
    [property: JsonPropertyName("options")] IReadOnlyDictionary<string, object> Options);

/// <summary>SchedulerItem of GET /sdapi/v1/schedulers.</summary>
public sealed record A1111SchedulerItem(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("label")] string Label,
    [property: JsonPropertyName("aliases")] IReadOnlyList<string>? Aliases,
    [property: JsonPropertyName("default_rho")] double? DefaultRho,
    [property: JsonPropertyName("need_inner_model")] bool? NeedInnerModel);

/// <summary>
/// A1111's error body (modules/api/api.py handle_exception): <c>{"error": type, "detail": text, "body": "", "errors": text}</c>,
/// returned here with a 4xx status for every malformed request.
/// </summary>
public sealed record A1111Error(
    [property: JsonPropertyName("error")] string Error,
    [property: JsonPropertyName("detail")] string Detail,
    [property: JsonPropertyName("body")] string Body,
    [property: JsonPropertyName("errors")] string Errors)
{
    public static A1111Error Http(string detail) => new("HTTPException", detail, "", detail);
}

/// <summary>A request that cannot be served, with the HTTP status to answer (4xx).</summary>
public sealed class A1111RequestException(int status, string detail) : Exception(detail)
{
    public int Status { get; } = status;
    public A1111Error Body => A1111Error.Http(Message);
}

/// <summary>The JSON settings A1111's API uses (snake_case names come from the attributes).</summary>
public static class A1111Json
{
    public static readonly JsonSerializerOptions Options = new()
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        MaxDepth = 32,
    };

    /// <summary>Parses a request body; malformed JSON or wrong types are a 422 naming the problem (FastAPI answers 422 too).</summary>
    public static T Parse<T>(string body) where T : class
    {
        try
        {
            return JsonSerializer.Deserialize<T>(body, Options) ?? throw new A1111RequestException(422, "request body must be a JSON object");
        }
        catch (JsonException e)
        {
            throw new A1111RequestException(422, $"invalid request body: {e.Message}");
        }
    }

    /// <summary>The request as "parameters" echoes it: every field with its value or default.</summary>
    public static JsonObject Echo<T>(T request) => JsonSerializer.SerializeToNode(request, Options)!.AsObject();
}
