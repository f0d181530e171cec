using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using SelfCascade.Pipelines;
using SelfCascade.Server.Jobs;

namespace SelfCascade.Server.Compat.A1111;

/// <summary>
/// AUTOMATIC1111's web API (/sdapi/v1/...) over the job engine: txt2img (with the hires fix as the self-cascade),
/// img2img as 2x/4x upscaling, progress, interrupt/skip, models, options (model switch), samplers and schedulers.
/// Each image of a request is one job (seed + i), so it shows in the native API and the page like any other.
/// Errors use A1111's body <c>{"error", "detail", "body", "errors"}</c>, always with a 4xx for a bad request.
/// What is mapped and what is ignored: docs/SERVER-COMPAT.md.
/// </summary>
public sealed class A1111Api : IEndpointModule
{
    private readonly object _lock = new();
    private string? _currentModel;
    private readonly JsonObject _options = new();
    /// <summary>The A1111 request being served (its job ids in image order), for /progress and /interrupt.</summary>
    private A1111Batch? _active;
    private byte[]? _lastImage;

    private sealed class A1111Batch(IReadOnlyList<string> jobIds)
    {
        public IReadOnlyList<string> JobIds { get; } = jobIds;
        public DateTimeOffset Started { get; } = DateTimeOffset.UtcNow;
        public string Timestamp { get; } = DateTime.Now.ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture);
        public volatile bool Interrupted;
    }

    public void Map(WebApplication app)
    {
        var queue = app.Services.GetRequiredService<JobQueue>();
        var models = queue.Models;
        var limits = new A1111Limits
        {
            MaxSide = queue.Limits.MaxSide, MaxImages = queue.Limits.MaxImages, MaxSteps = queue.Limits.MaxSteps,
        };
        // img2img inputs: the native upscale endpoint's input bound (pixels), as a side limit.
        var img2imgLimits = limits with { MaxSide = (int)Math.Min(limits.MaxSide, Math.Sqrt(queue.Limits.MaxInputPixels)) };
        queue.EventPublished += ev =>
        {
            if (ev.Type is JobEventTypes.Preview or JobEventTypes.Stage && ev.Png is { } png)
                lock (_lock) if (_active?.JobIds.Contains(ev.JobId) == true) _lastImage = png;
        };
        var g = app.MapGroup("/sdapi/v1").WithTags("a1111");

        g.MapPost("/txt2img", Handler(ctx => Guarded(ctx, async () =>
        {
            var r = A1111Json.Parse<A1111Txt2ImgRequest>(await ReadBody(ctx));
            var model = ResolveModel(models, r.CheckpointOverride);
            var plan = A1111Mapping.Txt2Img(r, model, models.Geometry(model), limits);
            return await RunAsync(queue, plan, ctx.RequestAborted);
        })));

        g.MapPost("/img2img", Handler(ctx => Guarded(ctx, async () =>
        {
            var r = A1111Json.Parse<A1111Img2ImgRequest>(await ReadBody(ctx));
            var model = ResolveModel(models, r.CheckpointOverride);
            var plan = A1111Mapping.Img2Img(r, model, img2imgLimits);
            var response = await RunAsync(queue, plan, ctx.RequestAborted);
            if (!r.IncludeInitImages) { response.Parameters["init_images"] = null; response.Parameters["mask"] = null; }
            return response;
        })));

        g.MapGet("/progress", (bool? skip_current_image) =>
        {
            A1111State state;
            lock (_lock) state = State(queue, _active, _lastImage);
            return Results.Json(A1111Progress.Build(state, DateTimeOffset.UtcNow, skip_current_image ?? false), A1111Json.Options);
        });

        g.MapPost("/interrupt", () =>
        {
            A1111Batch? batch;
            lock (_lock) batch = _active;
            if (batch is not null)
            {
                batch.Interrupted = true;
                foreach (var id in batch.JobIds) queue.Cancel(id);
            }
            return Results.Json(new JsonObject());
        });

        g.MapPost("/skip", () =>
        {
            A1111Batch? batch;
            lock (_lock) batch = _active;
            if (batch is not null && queue.Running is { } running && batch.JobIds.Contains(running.Id)) queue.Cancel(running.Id);
            return Results.Json(new JsonObject());
        });

        g.MapGet("/sd-models", () => Results.Json(models.List().Select(m =>
            new A1111ModelItem(m.Name, m.Name, null, null, models.Resolve(m.Name).Path, null)).ToList(), A1111Json.Options));

        g.MapGet("/options", () =>
        {
            var o = new JsonObject
            {
                ["sd_model_checkpoint"] = CurrentModel(models),
                ["samples_format"] = "png",
                ["CLIP_stop_at_last_layers"] = 1,
                ["sd_vae"] = "Automatic",
                ["enable_pnginfo"] = true,
            };
            lock (_lock) foreach (var (k, v) in _options) if (!o.ContainsKey(k)) o[k] = v?.DeepClone();
            return Results.Json(o, A1111Json.Options);
        });

        g.MapPost("/options", Handler(ctx => Guarded(ctx, async () =>
        {
            JsonObject body;
            try { body = JsonNode.Parse(await ReadBody(ctx)) as JsonObject ?? throw new A1111RequestException(422, "options must be a JSON object"); }
            catch (JsonException e) { throw new A1111RequestException(422, $"invalid request body: {e.Message}"); }
            if (body.Count > 256) throw new A1111RequestException(422, "too many options");
            if (body["sd_model_checkpoint"] is JsonNode m)
            {
                var name = m is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new A1111RequestException(422, "sd_model_checkpoint must be a string");
                var resolved = ResolveModel(models, name);
                lock (_lock) _currentModel = resolved;
            }
            // Other options are kept (GET shows them) but change nothing here.
            lock (_lock)
                foreach (var (k, v) in body)
                    if (k != "sd_model_checkpoint") _options[k] = v?.DeepClone();
            return (object?)null;
        })));

        g.MapGet("/samplers", () => Results.Json(A1111Samplers.Items(), A1111Json.Options));
        g.MapGet("/schedulers", () => Results.Json(A1111Samplers.SchedulerItems(), A1111Json.Options));
        g.MapGet("/upscalers", () => Results.Json(A1111Mapping.LatentUpscalers.Select(n =>
            new { name = n, model_name = (string?)null, model_path = (string?)null, model_url = (string?)null, scale = 2.0 }).ToList()));
        g.MapGet("/latent-upscale-modes", () => Results.Json(A1111Mapping.LatentUpscalers.Select(n => new { name = n }).ToList()));
        g.MapGet("/sd-vae", () => Results.Json(Array.Empty<object>()));
        // The Lora extension's list (name, alias, path, metadata): path is the served name, never the server's file path.
        g.MapGet("/loras", () => Results.Json(queue.Extras.LoraNames.Select(n => new { name = n, alias = n, path = n, metadata = new { } }).ToList()));
        g.MapPost("/refresh-loras", () => Results.Json((object?)null));
        g.MapGet("/embeddings", () => Results.Json(new { loaded = new { }, skipped = new { } }));
    }

    /// <summary>A handler as a route-handler Delegate (so its IResult is written, not discarded as a RequestDelegate's).</summary>
    private static Delegate Handler(Func<HttpContext, Task<IResult>> f) => f;

    private string CurrentModel(Models.ModelRegistry models)
    {
        lock (_lock) return _currentModel ?? models.DefaultName;
    }

    /// <summary>A served model by name or A1111-style title (".safetensors" and a " [hash]" suffix are ignored); 404 otherwise.</summary>
    private string ResolveModel(Models.ModelRegistry models, string? name)
    {
        if (string.IsNullOrEmpty(name)) return CurrentModel(models);
        var n = name.Trim();
        int bracket = n.LastIndexOf(" [", StringComparison.Ordinal);
        if (bracket > 0 && n.EndsWith(']')) n = n[..bracket];
        if (n.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) n = n[..^".safetensors".Length];
        return models.Names.FirstOrDefault(x => x == n || x == name) ?? throw new A1111RequestException(404, "Model not found");
    }

    private async Task<A1111ImageResponse> RunAsync(JobQueue queue, A1111Plan plan, CancellationToken aborted)
    {
        string? cli = plan.Sampler.CliName
            ?? throw new A1111RequestException(422, $"sampler '{plan.SamplerName}' with scheduler '{plan.Source.Scheduler}' cannot run through this API; use Automatic");
        var paramsJson = A1111Json.Echo((object)plan.Source).ToJsonString();
        var ids = new List<string>();
        try
        {
            foreach (var t in plan.Tasks)
            {
                var c = t.Request;
                var job = queue.Submit(new JobRequest
                {
                    Model = plan.Model,
                    Kind = t.IsUpscale ? JobKind.Upscale : JobKind.TextToImage,
                    Generation = c.Request,
                    Method = t.IsUpscale ? null : c.Method,
                    Scheduler = cli,
                    BaseSize = c.BaseSize,
                    PivotStrength = c.PivotStrength,
                    StageOverrides = c.StageOverrides,
                    PivotMode = c.PivotMode,
                    Upsamplers = plan.Upsamplers,
                    Loras = plan.Loras,
                    Image = t.InitImage,
                    Scale = t.IsUpscale ? t.UpscaleFactor : 2,
                    Origin = "a1111",
                    ExtraMetadata = new Dictionary<string, string> { ["a1111_infotext"] = plan.Infotext(t.Index) },
                    ParametersJson = paramsJson,
                });
                ids.Add(job.Id);
            }
        }
        catch
        {
            foreach (var id in ids) queue.Cancel(id);
            throw;
        }
        var batch = new A1111Batch(ids);
        lock (_lock) { _active = batch; _lastImage = null; }
        var images = new List<string>();
        string? failure = null;
        try
        {
            foreach (var id in ids)
            {
                JobInfo? final = null;
                await foreach (var ev in queue.Subscribe(id, aborted))
                    if (ev.IsFinal) final = ev.Job ?? queue.Get(id);
                final ??= queue.Get(id);
                if (final is null) continue;
                if (final.Status == JobStatus.Done)
                {
                    var infotext = plan.Infotext(ids.IndexOf(id));
                    foreach (var name in final.Images)
                        if (queue.Outputs.Find(id, name) is { } path)
                            images.Add(Convert.ToBase64String(A1111Images.WithInfotext(await File.ReadAllBytesAsync(path, aborted), infotext)));
                }
                else if (final.Status == JobStatus.Failed) failure ??= final.Error;
            }
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            foreach (var id in ids) queue.Cancel(id); // the client went away: its images are not wanted
            throw;
        }
        finally
        {
            lock (_lock) if (_active == batch) _active = null;
        }
        if (images.Count == 0 && failure is not null) throw new A1111JobFailedException(failure);
        return new A1111ImageResponse
        {
            Images = plan.Source.SendImages ? images : [],
            Parameters = A1111Json.Echo((object)plan.Source),
            Info = plan.InfoJson(),
        };
    }

    private static A1111State State(JobQueue queue, A1111Batch? batch, byte[]? image)
    {
        if (batch is null) return A1111State.Idle;
        var running = queue.Running;
        int done = 0;
        foreach (var id in batch.JobIds)
        {
            var j = running?.Id == id ? running : queue.Get(id);
            if (j is not null && j.Status.IsFinal()) done++;
        }
        var p = running is not null && batch.JobIds.Contains(running.Id) ? queue.LatestProgress(running.Id) : null;
        return new A1111State
        {
            Job = $"Batch {Math.Min(done + 1, batch.JobIds.Count)} out of {batch.JobIds.Count}",
            JobCount = batch.JobIds.Count, JobNo = done,
            SamplingStep = p?.Step ?? 0, SamplingSteps = p?.TotalSteps ?? 0, CurrentFraction = p?.Fraction,
            Interrupted = batch.Interrupted, Started = batch.Started, JobTimestamp = batch.Timestamp, CurrentImagePng = image,
        };
    }

    private static async Task<string> ReadBody(HttpContext ctx)
    {
        using var reader = new StreamReader(ctx.Request.Body);
        return await reader.ReadToEndAsync(ctx.RequestAborted);
    }

    /// <summary>Runs a handler and answers A1111's error body on failure (4xx for bad requests, 429/503 from the queue, 500 for a failed job).</summary>
    private static async Task<IResult> Guarded<T>(HttpContext ctx, Func<Task<T>> handler)
    {
        try
        {
            var result = await handler();
            return result is null ? Results.Json(new JsonObject()) : Results.Json(result, A1111Json.Options);
        }
        catch (A1111RequestException e) { return Results.Json(e.Body, A1111Json.Options, statusCode: e.Status); }
        catch (JobRequestException e) { return Results.Json(A1111Error.Http(e.Message), A1111Json.Options, statusCode: e.StatusCode == 404 ? 404 : 422); }
        catch (QueueFullException e)
        {
            ctx.Response.Headers.RetryAfter = e.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return Results.Json(A1111Error.Http(e.Message), A1111Json.Options, statusCode: 429);
        }
        catch (ServerStoppingException e) { return Results.Json(A1111Error.Http(e.Message), A1111Json.Options, statusCode: 503); }
        catch (A1111JobFailedException e) { return Results.Json(new A1111Error("RuntimeError", e.Message, "", e.Message), A1111Json.Options, statusCode: 500); }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException e) { return Results.Json(A1111Error.Http(e.Message), A1111Json.Options, statusCode: e.StatusCode); }
    }
}

/// <summary>Every image of a request failed (e.g. out of memory): a 500 naming the job's error; the server keeps serving.</summary>
public sealed class A1111JobFailedException(string message) : Exception(message);
