using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using SelfCascade.Cascade;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;

namespace SelfCascade.Server.Compat.A1111;

/// <summary>Limits an A1111 request is checked against (a server bounds memory and time per request).</summary>
public sealed record A1111Limits
{
    public int MaxSide { get; init; } = 4096;
    public int MaxImages { get; init; } = 16;
    public int MaxSteps { get; init; } = 1000;
    public int MaxInitImageBytes { get; init; } = 32 << 20;
}

/// <summary>One image of an A1111 request: our request, the seed A1111 would give it, and for img2img the init image and factor.</summary>
public sealed record A1111ImageTask(int Index, long Seed, CascadeRequest Request, RgbImage? InitImage = null, int UpscaleFactor = 0)
{
    public bool IsUpscale => InitImage is not null;
}

/// <summary>
/// An A1111 request mapped onto our operations, plus what its answer needs (infotexts and the <c>info</c> JSON).
/// Image i gets seed + i (A1111's all_seeds for batch_size × n_iter images), so each image is reproducible alone;
/// the images run one after the other as single-image requests.
/// </summary>
public sealed class A1111Plan
{
    public required string Model { get; init; }
    public required SamplerChoice Sampler { get; init; }
    /// <summary>The sampler as A1111 names it ("Euler a").</summary>
    public required string SamplerName { get; init; }
    public required A1111ProcessingRequest Source { get; init; }
    public required IReadOnlyList<A1111ImageTask> Tasks { get; init; }
    /// <summary>First-pass size (A1111's p.width/p.height).</summary>
    public required int Width { get; init; }
    public required int Height { get; init; }
    /// <summary>A1111's extra_generation_params (Hires upscale/steps/upscaler) in insertion order.</summary>
    public required IReadOnlyList<KeyValuePair<string, object>> ExtraParams { get; init; }
    public double? DenoisingStrength { get; init; }
    /// <summary>How the hires pass resizes the latent (hr_upscaler "Latent" = bilinear, "Latent (bicubic)" = bicubic).</summary>
    public PivotResizeMode PivotMode { get; init; } = PivotResizeMode.Bilinear;
    /// <summary>The prompt's &lt;lora:NAME:SCALE&gt; tags (served names), applied to every image unless disable_extra_networks.</summary>
    public IReadOnlyList<SelfCascade.Server.Extras.LoraUse> Loras { get; init; } = [];
    /// <summary>override_settings.selfcascade_upsamplers: a served upsampler set for the hires pass / upscale.</summary>
    public string? Upsamplers { get; init; }

    public IReadOnlyList<long> Seeds => Tasks.Select(t => t.Seed).ToList();

    /// <summary>A1111's create_infotext for image <paramref name="index"/> (what its PNGs carry as "parameters").</summary>
    public string Infotext(int index)
    {
        var p = new List<KeyValuePair<string, object?>>
        {
            new("Steps", Source.Steps),
            new("Sampler", SamplerName),
            new("Schedule type", string.IsNullOrEmpty(Source.Scheduler) ? null : Source.Scheduler),
            new("CFG scale", Source.CfgScale),
            new("Seed", Tasks[index].Seed),
            new("Size", $"{Width}x{Height}"),
            new("Model", Model),
            new("Denoising strength", DenoisingStrength),
        };
        foreach (var kv in ExtraParams) p.Add(new(kv.Key, kv.Value));
        p.Add(new("Version", "SelfCascade"));
        var parameters = string.Join(", ", p.Where(kv => kv.Value is not null).Select(kv => $"{kv.Key}: {Quote(Py(kv.Value!))}"));
        var negative = string.IsNullOrEmpty(Source.NegativePrompt) ? "" : $"\nNegative prompt: {Source.NegativePrompt}";
        return $"{Source.Prompt}{negative}\n{parameters}".Trim();
    }

    /// <summary>Processed.js(): the <c>info</c> string of the answer, with A1111's keys in A1111's order.</summary>
    public string InfoJson(string? modelHash = null, DateTime? now = null)
    {
        int n = Tasks.Count;
        var infotexts = new JsonArray(Enumerable.Range(0, n).Select(i => (JsonNode?)Infotext(i)).ToArray());
        var extra = new JsonObject();
        foreach (var kv in ExtraParams) extra[kv.Key] = JsonSerializer.SerializeToNode(kv.Value);
        var o = new JsonObject
        {
            ["prompt"] = Source.Prompt,
            ["all_prompts"] = Repeat(Source.Prompt, n),
            ["negative_prompt"] = Source.NegativePrompt,
            ["all_negative_prompts"] = Repeat(Source.NegativePrompt, n),
            ["seed"] = n > 0 ? Tasks[0].Seed : Source.Seed,
            ["all_seeds"] = new JsonArray(Tasks.Select(t => (JsonNode?)t.Seed).ToArray()),
            ["subseed"] = Source.Subseed,
            ["all_subseeds"] = new JsonArray(Tasks.Select(_ => (JsonNode?)Source.Subseed).ToArray()),
            ["subseed_strength"] = Source.SubseedStrength,
            ["width"] = Width,
            ["height"] = Height,
            ["sampler_name"] = SamplerName,
            ["cfg_scale"] = Source.CfgScale,
            ["steps"] = Source.Steps,
            ["batch_size"] = Source.BatchSize,
            ["restore_faces"] = Source.RestoreFaces ?? false,
            ["face_restoration_model"] = null,
            ["sd_model_name"] = Model,
            ["sd_model_hash"] = modelHash,
            ["sd_vae_name"] = null,
            ["sd_vae_hash"] = null,
            ["seed_resize_from_w"] = Source.SeedResizeFromW,
            ["seed_resize_from_h"] = Source.SeedResizeFromH,
            ["denoising_strength"] = Source.DenoisingStrength,
            ["extra_generation_params"] = extra,
            ["index_of_first_image"] = 0,
            ["infotexts"] = infotexts,
            ["styles"] = new JsonArray((Source.Styles ?? []).Select(s => (JsonNode?)s).ToArray()),
            ["job_timestamp"] = (now ?? DateTime.Now).ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture),
            ["clip_skip"] = 1,
            ["is_using_inpainting_conditioning"] = false,
            ["version"] = "SelfCascade",
        };
        return o.ToJsonString();

        static JsonArray Repeat(string s, int k) => new(Enumerable.Range(0, k).Select(_ => (JsonNode?)s).ToArray());
    }

    /// <summary>Python's str() of a value as the infotext shows it (floats keep ".0").</summary>
    internal static string Py(object v) => v switch
    {
        double d => A1111Mapping.PyFloat(d),
        float f => A1111Mapping.PyFloat(f),
        bool b => b ? "True" : "False",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };

    /// <summary>generation_parameters_copypaste.quote: JSON-quoted when the text has a comma, newline or colon.</summary>
    internal static string Quote(string text) =>
        text.Contains(',') || text.Contains('\n') || text.Contains(':')
            ? JsonSerializer.Serialize(text, new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping })
            : text;
}

/// <summary>
/// Maps A1111 requests onto ours (pure: no model is loaded; planning needs the model's geometry only):
/// <list type="bullet">
/// <item>txt2img without enable_hr: our direct text-to-image at width×height (A1111 samples that size directly too);</item>
/// <item>txt2img with enable_hr: the self-cascade from width×height (the first pass, our base stage) to
/// width·hr_scale × height·hr_scale (or hr_resize_x/y); every later stage re-noises at denoising_strength and runs
/// exactly hr_second_pass_steps steps (0: steps), as A1111's hires pass does;</item>
/// <item>img2img: an upscale of each init image by 2 or 4 per side (width/height must be that multiple of the image),
/// steps and denoising_strength with img2img's meaning (int(steps × strength) steps run).</item>
/// </list>
/// </summary>
public static class A1111Mapping
{
    /// <summary>The smallest schedule length T whose img2img at strength s runs ≥ <paramref name="steps"/> steps (= exactly that many).</summary>
    public static int ScheduleForSteps(int steps, double strength)
    {
        if (!(strength > 0 && strength <= 1)) throw new A1111RequestException(422, $"denoising_strength {strength} must lie in (0, 1]");
        for (long t = steps; t <= (long)steps * 10_000; t++)
            if (CascadeMath.Img2ImgSteps((int)t, strength) >= steps) return (int)t;
        throw new A1111RequestException(422, $"denoising_strength {strength} is too small for {steps} steps");
    }

    private static void CheckCommon(A1111ProcessingRequest r, A1111Limits limits)
    {
        void Bad(string m) => throw new A1111RequestException(422, m);
        if (r.Steps < 1 || r.Steps > limits.MaxSteps) Bad($"steps must lie in [1, {limits.MaxSteps}] (got {r.Steps})");
        if (!double.IsFinite(r.CfgScale) || r.CfgScale < 0 || r.CfgScale > 100) Bad($"cfg_scale must lie in [0, 100] (got {r.CfgScale})");
        if (r.BatchSize < 1 || r.NIter < 1) Bad("batch_size and n_iter must be at least 1");
        if ((long)r.BatchSize * r.NIter > limits.MaxImages) Bad($"batch_size × n_iter = {(long)r.BatchSize * r.NIter} images; at most {limits.MaxImages} per request");
        if (r.Seed < -1) Bad($"seed must be -1 (random) or ≥ 0 (got {r.Seed})");
        if (r.Width < 8 || r.Height < 8 || r.Width > limits.MaxSide || r.Height > limits.MaxSide)
            Bad($"width and height must lie in [8, {limits.MaxSide}] (got {r.Width}x{r.Height})");
        if (r.DenoisingStrength is double d && !(d >= 0 && d <= 1)) Bad($"denoising_strength must lie in [0, 1] (got {d})");
    }

    /// <summary>A1111's get_fixed_seed: -1 draws from [0, 4294967294).</summary>
    public static long FixSeed(long seed, Random? random = null) => seed == -1 ? (random ?? Random.Shared).NextInt64(4294967294) : seed;

    /// <summary>
    /// Maps a txt2img request. <paramref name="model"/> is the checkpoint to use (the override or the current one),
    /// <paramref name="geometry"/> its geometry (for the cascade plan's stage count).
    /// </summary>
    public static A1111Plan Txt2Img(A1111Txt2ImgRequest r, string model, ModelGeometry geometry, A1111Limits? limits = null, Random? random = null)
    {
        limits ??= new A1111Limits();
        CheckCommon(r, limits);
        var sampler = A1111Samplers.Resolve(r.Sampler, r.Scheduler);
        int width = r.Width, height = r.Height;
        if (r.FirstphaseWidth != 0 || r.FirstphaseHeight != 0)
            throw new A1111RequestException(422, "firstphase_width/firstphase_height (the pre-1.0 hires fix) are not supported; use width, height and hr_scale");
        long seed = FixSeed(r.Seed, random);
        int count = r.BatchSize * r.NIter;
        var (prompt, loras) = A1111ExtraNetworks.Parse(r.Prompt);
        var upsamplers = A1111ExtraNetworks.Upsamplers(r);
        var extra = new List<KeyValuePair<string, object>>();
        int targetW = width, targetH = height;
        int? hrSteps = null;
        double? strength = null;
        var pivotMode = PivotResizeMode.Bilinear;
        if (r.EnableHr)
        {
            if (r.HrResizeX == 0 && r.HrResizeY == 0)
            {
                if (!double.IsFinite(r.HrScale) || r.HrScale < 1) throw new A1111RequestException(422, $"hr_scale must be ≥ 1 (got {r.HrScale})");
                extra.Add(new("Hires upscale", r.HrScale));
                targetW = (int)(width * r.HrScale);
                targetH = (int)(height * r.HrScale);
            }
            else
            {
                if (r.HrResizeX < 0 || r.HrResizeY < 0) throw new A1111RequestException(422, "hr_resize_x/hr_resize_y must be ≥ 0");
                extra.Add(new("Hires resize", $"{r.HrResizeX}x{r.HrResizeY}"));
                // A1111's calculate_target_resolution for one side given; both given must keep the aspect (no crop here).
                targetW = r.HrResizeX != 0 ? r.HrResizeX : r.HrResizeY * width / height;
                targetH = r.HrResizeY != 0 ? r.HrResizeY : r.HrResizeX * height / width;
            }
            if (targetW > limits.MaxSide || targetH > limits.MaxSide)
                throw new A1111RequestException(422, $"hires target {targetW}x{targetH} exceeds {limits.MaxSide} px per side");
            if (r.HrSecondPassSteps < 0 || r.HrSecondPassSteps > limits.MaxSteps)
                throw new A1111RequestException(422, $"hr_second_pass_steps must lie in [0, {limits.MaxSteps}]");
            strength = r.DenoisingStrength ?? 0.75;
            if (!(strength > 0)) throw new A1111RequestException(422, "denoising_strength must be > 0 with enable_hr");
            hrSteps = r.HrSecondPassSteps > 0 ? r.HrSecondPassSteps : r.Steps;
            if (r.HrSecondPassSteps > 0) extra.Add(new("Hires steps", r.HrSecondPassSteps));
            extra.Add(new("Hires upscaler", r.HrUpscaler ?? "Latent"));
            pivotMode = HiresUpscaler(r.HrUpscaler);
        }
        bool hires = r.EnableHr && (targetW != width || targetH != height);
        if (upsamplers is not null)
        {
            if (!hires) throw new A1111RequestException(422, $"override_settings.{A1111ExtraNetworks.UpsamplersSetting} needs the hires fix (enable_hr with a larger target)");
            extra.Add(new("SelfCascade upsamplers", upsamplers));
        }
        var tasks = new List<A1111ImageTask>();
        for (int i = 0; i < count; i++)
        {
            var gen = new GenerationRequest(prompt)
            {
                NegativePrompt = r.NegativePrompt, Seed = seed + i, Steps = r.Steps, Guidance = r.CfgScale, NumImages = 1,
                Width = hires ? targetW : width, Height = hires ? targetH : height,
            };
            CascadeRequest request;
            if (!hires)
                request = new CascadeRequest { Request = gen, Method = GenerationMethod.Direct };
            else
            {
                var baseRequest = new CascadeRequest { Request = gen, BaseSize = new PixelSize(width, height), PivotStrength = strength, PivotMode = pivotMode };
                ScalePlan plan;
                try { plan = CascadeGenerator.Plan(geometry, targetW, targetH, baseRequest); }
                catch (ScalePlanException e) { throw new A1111RequestException(422, $"hires fix {width}x{height} -> {targetW}x{targetH}: {e.Message}"); }
                int schedule = ScheduleForSteps(hrSteps!.Value, strength!.Value);
                var overrides = Enumerable.Range(1, plan.Stages.Count - 1)
                    .ToDictionary(k => k, _ => new StageSettings(Steps: schedule, Strength: strength));
                request = new CascadeRequest
                {
                    Request = gen, BaseSize = baseRequest.BaseSize, PivotStrength = strength, StageOverrides = overrides, PivotMode = pivotMode,
                };
            }
            tasks.Add(new A1111ImageTask(i, seed + i, request));
        }
        return new A1111Plan
        {
            Model = model, Sampler = sampler, SamplerName = A1111Samplers.CanonicalName(r.Sampler), Source = r, Tasks = tasks,
            Width = width, Height = height, ExtraParams = extra, DenoisingStrength = hires ? strength : null, PivotMode = pivotMode,
            Loras = r.DisableExtraNetworks ? [] : loras, Upsamplers = upsamplers,
        };
    }

    /// <summary>
    /// Maps an img2img request onto upscaling: every init image (decoded, bounded) is upscaled by width / image width
    /// (2 or 4, equal on both sides); image i uses init image i mod count and seed + i.
    /// </summary>
    public static A1111Plan Img2Img(A1111Img2ImgRequest r, string model, A1111Limits? limits = null, Random? random = null)
    {
        limits ??= new A1111Limits();
        if (r.InitImages is not { Count: > 0 }) throw new A1111RequestException(404, "Init image not found");
        CheckCommon(r, limits);
        if (!string.IsNullOrEmpty(r.Mask)) throw new A1111RequestException(422, "inpainting (mask) is not supported; img2img here upscales");
        var sampler = A1111Samplers.Resolve(r.Sampler, r.Scheduler);
        double strength = r.DenoisingStrength ?? 0.75;
        if (!(strength > 0)) throw new A1111RequestException(422, "denoising_strength must be > 0");
        var images = r.InitImages.Select((s, i) => A1111Images.DecodeBase64(s, limits, $"init_images[{i}]")).ToList();
        long seed = FixSeed(r.Seed, random);
        int count = r.BatchSize * r.NIter;
        var (prompt, loras) = A1111ExtraNetworks.Parse(r.Prompt);
        var upsamplers = A1111ExtraNetworks.Upsamplers(r);
        var tasks = new List<A1111ImageTask>();
        for (int i = 0; i < count; i++)
        {
            var img = images[i % images.Count];
            int k = r.Width / img.Width;
            if (k is not (2 or 4) || r.Width != k * img.Width || r.Height != k * img.Height)
                throw new A1111RequestException(422,
                    $"img2img here upscales by 2 or 4 per side: width x height must be 2x or 4x the init image ({img.Width}x{img.Height}), got {r.Width}x{r.Height}");
            var gen = new GenerationRequest(prompt)
            {
                NegativePrompt = r.NegativePrompt, Seed = seed + i, Steps = r.Steps, Guidance = r.CfgScale, NumImages = 1,
                Width = r.Width, Height = r.Height,
            };
            tasks.Add(new A1111ImageTask(i, seed + i, new CascadeRequest { Request = gen, PivotStrength = strength }, img, k));
        }
        return new A1111Plan
        {
            Model = model, Sampler = sampler, SamplerName = A1111Samplers.CanonicalName(r.Sampler), Source = r, Tasks = tasks,
            Width = r.Width, Height = r.Height, ExtraParams = upsamplers is null ? [] : [new("SelfCascade upsamplers", upsamplers)], DenoisingStrength = strength,
            Loras = r.DisableExtraNetworks ? [] : loras, Upsamplers = upsamplers,
        };
    }

    /// <summary>A1111's latent upscale modes we run: the pivot resize of the cascade (bilinear or bicubic, align_corners=False).</summary>
    public static readonly IReadOnlyList<string> LatentUpscalers = ["Latent", "Latent (bicubic)"];

    /// <summary>hr_upscaler → pivot resize; pixel-space upscalers (ESRGAN, Lanczos, ...) are not available.</summary>
    public static PivotResizeMode HiresUpscaler(string? name) => name switch
    {
        null or "" or "Latent" => PivotResizeMode.Bilinear,
        "Latent (bicubic)" => PivotResizeMode.Bicubic,
        _ => throw new A1111RequestException(422, $"hr_upscaler '{name}' is not available; available: {string.Join(", ", LatentUpscalers)}"),
    };

    /// <summary>Python's str(float): shortest round-trip digits, always with a decimal point or exponent ("7.0", "0.75").</summary>
    public static string PyFloat(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        var s = d.ToString("R", CultureInfo.InvariantCulture);
        if (s.Contains('E')) return s.Replace("E", "e");
        return s.Contains('.') ? s : s + ".0";
    }
}
