using System.Text.Json.Serialization;
using SelfCascade.Server.Jobs;

namespace SelfCascade.Server.Api;

/// <summary>POST /api/jobs: text to image with every `generate` option. Unknown fields are refused (400).</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class GenerateBody
{
    [JsonPropertyName("model")] public string? Model { get; set; }
    [JsonPropertyName("prompt")] public string? Prompt { get; set; }
    [JsonPropertyName("negative_prompt")] public string? NegativePrompt { get; set; }
    /// <summary>Null or -1: a random seed (reported in the job record).</summary>
    [JsonPropertyName("seed")] public long? Seed { get; set; }
    [JsonPropertyName("width")] public int? Width { get; set; }
    [JsonPropertyName("height")] public int? Height { get; set; }
    /// <summary>"WIDTHxHEIGHT", instead of width/height.</summary>
    [JsonPropertyName("size")] public string? Size { get; set; }
    /// <summary>Null: the model's default.</summary>
    [JsonPropertyName("steps")] public int? Steps { get; set; }
    [JsonPropertyName("guidance")] public double? Guidance { get; set; }
    [JsonPropertyName("num_images")] public int? NumImages { get; set; }
    /// <summary>direct, attn-scale, upscale-only, self-cascade (default: self-cascade above the native size).</summary>
    [JsonPropertyName("method")] public string? Method { get; set; }
    [JsonPropertyName("scheduler")] public string? Scheduler { get; set; }
    [JsonPropertyName("base_size")] public string? BaseSize { get; set; }
    [JsonPropertyName("pivot_strength")] public double? PivotStrength { get; set; }
    [JsonPropertyName("stage_steps")] public int[]? StageSteps { get; set; }
    [JsonPropertyName("stage_strength")] public double[]? StageStrength { get; set; }
    [JsonPropertyName("stage_guidance")] public double[]? StageGuidance { get; set; }
    [JsonPropertyName("pivot_mode")] public string? PivotMode { get; set; }
    [JsonPropertyName("vae_tiling")] public string? VaeTiling { get; set; }
    /// <summary>A latent preview event every N steps (default 5; 0 = none).</summary>
    [JsonPropertyName("preview_every")] public int? PreviewEvery { get; set; }
    /// <summary>A served feature-upsampler set by name (GET /api/models lists them): the tuned cascade, as generate --upsamplers.</summary>
    [JsonPropertyName("upsamplers")] public string? Upsamplers { get; set; }
    /// <summary>Served LoRAs by name, merged in order for this job (as generate --lora FILE:SCALE).</summary>
    [JsonPropertyName("loras")] public LoraBody[]? Loras { get; set; }
}

/// <summary>POST /api/upscale: an uploaded image (base64) or a finished job's image, 2x or 4x per side.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class UpscaleBody
{
    [JsonPropertyName("model")] public string? Model { get; set; }
    /// <summary>Base64 PNG/JPEG/WebP (a data: URL is accepted).</summary>
    [JsonPropertyName("image")] public string? Image { get; set; }
    /// <summary>Instead of image: a finished job's id and image index.</summary>
    [JsonPropertyName("job_id")] public string? JobId { get; set; }
    [JsonPropertyName("image_index")] public int? ImageIndex { get; set; }
    [JsonPropertyName("scale")] public int? Scale { get; set; }
    [JsonPropertyName("prompt")] public string? Prompt { get; set; }
    [JsonPropertyName("negative_prompt")] public string? NegativePrompt { get; set; }
    [JsonPropertyName("seed")] public long? Seed { get; set; }
    /// <summary>Steps per stage (each runs steps x strength); default 50 as `upscale`.</summary>
    [JsonPropertyName("steps")] public int? Steps { get; set; }
    [JsonPropertyName("guidance")] public double? Guidance { get; set; }
    [JsonPropertyName("scheduler")] public string? Scheduler { get; set; }
    [JsonPropertyName("pivot_strength")] public double? PivotStrength { get; set; }
    [JsonPropertyName("stage_steps")] public int[]? StageSteps { get; set; }
    [JsonPropertyName("stage_strength")] public double[]? StageStrength { get; set; }
    [JsonPropertyName("stage_guidance")] public double[]? StageGuidance { get; set; }
    [JsonPropertyName("pivot_mode")] public string? PivotMode { get; set; }
    [JsonPropertyName("vae_tiling")] public string? VaeTiling { get; set; }
    [JsonPropertyName("preview_every")] public int? PreviewEvery { get; set; }
    /// <summary>A served feature-upsampler set by name (GET /api/models lists them): the tuned cascade, as generate --upsamplers.</summary>
    [JsonPropertyName("upsamplers")] public string? Upsamplers { get; set; }
    /// <summary>Served LoRAs by name, merged in order for this job (as generate --lora FILE:SCALE).</summary>
    [JsonPropertyName("loras")] public LoraBody[]? Loras { get; set; }
}

/// <summary>A served LoRA a job uses: its name (GET /api/models) and scale (default 1).</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class LoraBody
{
    [JsonPropertyName("name")] public string? Name { get; set; }
    [JsonPropertyName("scale")] public double? Scale { get; set; }
    /// <summary>Another scale for the text encoder(s) (default: scale), as ComfyUI's strength_clip / A1111's &lt;lora:NAME:TE:UNET&gt;.</summary>
    [JsonPropertyName("text_encoder_scale")] public double? TextEncoderScale { get; set; }
}

/// <summary>A job as the native API shows it.</summary>
public sealed record JobView(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("kind")] string Kind,
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("origin")] string Origin,
    [property: JsonPropertyName("parameters")] System.Text.Json.JsonElement Parameters,
    [property: JsonPropertyName("created_at")] DateTimeOffset CreatedAt,
    [property: JsonPropertyName("started_at")] DateTimeOffset? StartedAt,
    [property: JsonPropertyName("finished_at")] DateTimeOffset? FinishedAt,
    [property: JsonPropertyName("error")] string? Error,
    [property: JsonPropertyName("seed")] long Seed,
    [property: JsonPropertyName("width")] int Width,
    [property: JsonPropertyName("height")] int Height,
    [property: JsonPropertyName("images")] IReadOnlyList<string> Images,
    [property: JsonPropertyName("stage_images")] IReadOnlyList<string> StageImages,
    [property: JsonPropertyName("stages")] IReadOnlyList<StageView> Stages,
    [property: JsonPropertyName("timings")] IReadOnlyDictionary<string, double> Timings,
    [property: JsonPropertyName("queue_position")] int? QueuePosition)
{
    /// <param name="prefix">URL prefix of the job's files, e.g. "/api/jobs/{id}".</param>
    public static JobView From(JobInfo j)
    {
        var prefix = $"/api/jobs/{j.Id}";
        System.Text.Json.JsonElement parameters;
        try { parameters = System.Text.Json.JsonDocument.Parse(j.ParametersJson).RootElement.Clone(); }
        catch (System.Text.Json.JsonException) { parameters = System.Text.Json.JsonDocument.Parse("{}").RootElement.Clone(); }
        return new JobView(j.Id, j.Status.Name(), j.Kind, j.Model, j.Origin, parameters, j.CreatedAt, j.StartedAt, j.FinishedAt, j.Error,
            j.Seed, j.Width, j.Height,
            j.Images.Select((_, i) => $"{prefix}/images/{i}").ToList(),
            j.StageImages.Select(f => $"{prefix}/files/{f}").ToList(),
            j.Stages.Select(s => new StageView(s.Index, s.Width, s.Height, s.Steps, s.Strength, s.Guidance, s.Seconds)).ToList(),
            j.Timings, j.QueuePosition);
    }
}

public sealed record StageView(
    [property: JsonPropertyName("index")] int Index,
    [property: JsonPropertyName("width")] int Width,
    [property: JsonPropertyName("height")] int Height,
    [property: JsonPropertyName("steps")] int Steps,
    [property: JsonPropertyName("strength")] double Strength,
    [property: JsonPropertyName("guidance")] double Guidance,
    [property: JsonPropertyName("seconds")] double Seconds);

public sealed record JobListView(
    [property: JsonPropertyName("jobs")] IReadOnlyList<JobView> Jobs,
    [property: JsonPropertyName("total")] int Total);

public sealed record QueueView(
    [property: JsonPropertyName("running")] JobView? Running,
    [property: JsonPropertyName("queued")] IReadOnlyList<JobView> Queued,
    [property: JsonPropertyName("max_queue")] int MaxQueue);

public sealed record CancelView(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("outcome")] string Outcome,
    [property: JsonPropertyName("job")] JobView? Job);

public sealed record ModelView(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("family")] string Family,
    [property: JsonPropertyName("native_size")] int NativeSize,
    [property: JsonPropertyName("loaded")] bool Loaded,
    [property: JsonPropertyName("resident_bytes")] long? ResidentBytes,
    [property: JsonPropertyName("default_steps")] int DefaultSteps,
    [property: JsonPropertyName("default_guidance")] double DefaultGuidance,
    [property: JsonPropertyName("default_pivot_strength")] double DefaultPivotStrength);

public sealed record ModelListView(
    [property: JsonPropertyName("models")] IReadOnlyList<ModelView> Models,
    [property: JsonPropertyName("default")] string Default,
    [property: JsonPropertyName("schedulers")] IReadOnlyList<string> Schedulers,
    [property: JsonPropertyName("methods")] IReadOnlyList<string> Methods,
    /// <summary>Served feature-upsampler sets (serve --upsamplers): what a job's "upsamplers" may name.</summary>
    [property: JsonPropertyName("upsamplers")] IReadOnlyList<UpsamplerView> Upsamplers,
    /// <summary>Served LoRAs (serve --lora): what a job's "loras" may name.</summary>
    [property: JsonPropertyName("loras")] IReadOnlyList<LoraView> Loras);

/// <summary>A served feature-upsampler set: its name and how many upscaling stages it has checkpoints for (never its path).</summary>
public sealed record UpsamplerView(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("stages")] int Stages);

/// <summary>A served LoRA: its name (never its path).</summary>
public sealed record LoraView([property: JsonPropertyName("name")] string Name);

/// <summary>One Server-Sent Event's data.</summary>
public sealed record EventView(
    [property: JsonPropertyName("seq")] long Sequence,
    [property: JsonPropertyName("job_id")] string JobId,
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("time")] DateTimeOffset Time,
    [property: JsonPropertyName("phase")] string? Phase,
    [property: JsonPropertyName("step")] int? Step,
    [property: JsonPropertyName("total_steps")] int? TotalSteps,
    [property: JsonPropertyName("stage")] int? Stage,
    [property: JsonPropertyName("stage_count")] int? StageCount,
    [property: JsonPropertyName("fraction")] double? Fraction,
    [property: JsonPropertyName("message")] string? Message,
    [property: JsonPropertyName("width")] int? Width,
    [property: JsonPropertyName("height")] int? Height,
    /// <summary>data:image/png;base64,... for stage and preview events.</summary>
    [property: JsonPropertyName("image")] string? Image,
    /// <summary>For stage events: the stage image's URL.</summary>
    [property: JsonPropertyName("url")] string? Url,
    [property: JsonPropertyName("job")] JobView? Job)
{
    public static EventView From(JobEvent e) => new(e.Sequence, e.JobId, e.Type, e.Time, e.Phase, e.Step, e.TotalSteps, e.Stage, e.StageCount,
        e.Fraction, e.Message, e.Width, e.Height, e.Png is null ? null : "data:image/png;base64," + Convert.ToBase64String(e.Png),
        e.File is null ? null : $"/api/jobs/{e.JobId}/files/{e.File}", e.Job is null ? null : JobView.From(e.Job));
}
