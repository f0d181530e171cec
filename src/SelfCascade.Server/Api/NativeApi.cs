using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.DependencyInjection;
using SelfCascade.Pipelines;
using SelfCascade.Schedulers;
using SelfCascade.Server.Jobs;
using SelfCascade.Server.Storage;

namespace SelfCascade.Server.Api;

/// <summary>
/// The native JSON API under /api (docs/SERVER.md): submit text-to-image or upscale jobs, list/get/cancel them, their
/// Server-Sent Events, result PNGs (with their metadata chunks) and stage images, the queue and the models.
/// </summary>
public sealed class NativeApi : IEndpointModule
{
    public void Map(WebApplication app)
    {
        var queue = app.Services.GetRequiredService<JobQueue>();
        var api = app.MapGroup("/api").WithTags("native");

        api.MapGet("/health", () => Results.Json(new { status = "ok" })).WithName("Health");

        api.MapGet("/models", () =>
        {
            var models = queue.Models.List().Select(m => new ModelView(m.Name, m.Family, m.NativeSize, m.Loaded, m.ResidentBytes,
                m.DefaultSteps, m.DefaultGuidance, m.DefaultPivotStrength)).ToList();
            var extras = queue.Extras;
            return Results.Json(new ModelListView(models, queue.Models.DefaultName, SchedulerFactory.Names, WireParsing.Methods,
                extras.UpsamplerNames.Select(n => new UpsamplerView(n, extras.UpsamplerStages(n))).ToList(),
                extras.LoraNames.Select(n => new LoraView(n)).ToList()));
        }).WithName("ListModels").Produces<ModelListView>();

        api.MapPost("/jobs", ([FromBody] GenerateBody body) =>
        {
            var job = queue.Submit(ToRequest(body, queue.Limits));
            return Results.Json(JobView.From(job), statusCode: StatusCodes.Status202Accepted);
        }).WithName("SubmitTextToImage").Produces<JobView>(StatusCodes.Status202Accepted).Produces<ApiError>(400).Produces<ApiError>(429);

        api.MapPost("/upscale", ([FromBody] UpscaleBody body) =>
        {
            var job = queue.Submit(ToRequest(body, queue));
            return Results.Json(JobView.From(job), statusCode: StatusCodes.Status202Accepted);
        }).WithName("SubmitUpscale").Produces<JobView>(StatusCodes.Status202Accepted).Produces<ApiError>(400).Produces<ApiError>(429);

        api.MapGet("/jobs", (int? limit, int? offset, string? status) =>
        {
            JobStatus? st = null;
            if (status is not null)
            {
                try { st = JobStatusNames.Parse(status); }
                catch (ArgumentException e) { throw new JobRequestException(e.Message); }
            }
            var list = queue.List(limit ?? 50, offset ?? 0, st);
            return Results.Json(new JobListView(list.Select(JobView.From).ToList(), list.Count));
        }).WithName("ListJobs").Produces<JobListView>();

        api.MapGet("/jobs/{id}", (string id) => queue.Get(id) is { } j ? Results.Json(JobView.From(j)) : NotFound(id))
            .WithName("GetJob").Produces<JobView>().Produces<ApiError>(404);

        api.MapPost("/jobs/{id}/cancel", (string id) => CancelResult(queue, id)).WithName("CancelJob").Produces<CancelView>();
        api.MapDelete("/jobs/{id}", (string id) => CancelResult(queue, id)).WithName("DeleteJob").Produces<CancelView>();

        api.MapGet("/queue", () =>
        {
            var (running, queued) = queue.Snapshot();
            return Results.Json(new QueueView(running is null ? null : JobView.From(running), queued.Select(JobView.From).ToList(),
                app.Services.GetRequiredService<ServerOptions>().MaxQueue));
        }).WithName("GetQueue").Produces<QueueView>();

        api.MapGet("/jobs/{id}/events", async (string id, HttpContext ctx) =>
        {
            if (queue.Get(id) is null)
            {
                await ErrorMiddleware.WriteAsync(ctx, 404, $"no job '{Short(id)}'");
                return;
            }
            ctx.Response.ContentType = "text/event-stream";
            ctx.Response.Headers.CacheControl = "no-cache";
            ctx.Response.Headers["X-Accel-Buffering"] = "no";
            await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
            try
            {
                await foreach (var ev in queue.Subscribe(id, ctx.RequestAborted))
                {
                    var data = JsonSerializer.Serialize(EventView.From(ev));
                    await ctx.Response.WriteAsync($"id: {ev.Sequence}\nevent: {ev.Type}\ndata: {data}\n\n", ctx.RequestAborted);
                    await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
                }
            }
            catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested) { }
        }).WithName("JobEvents").Produces(200, contentType: "text/event-stream");

        api.MapGet("/jobs/{id}/images/{index:int}", (string id, int index) =>
        {
            var job = queue.Get(id);
            if (job is null) return NotFound(id);
            if (index < 0 || index >= job.Images.Count)
                return Error(404, job.Status == JobStatus.Done ? $"job has {job.Images.Count} image(s)" : $"job is {job.Status.Name()}, no image");
            var path = queue.Outputs.Find(id, job.Images[index]);
            return path is null ? Error(404, "the image file is missing") : Results.File(path, "image/png");
        }).WithName("GetImage").Produces(200, contentType: "image/png").Produces<ApiError>(404);

        api.MapGet("/jobs/{id}/files/{name}", (string id, string name) =>
        {
            var path = queue.Outputs.Find(id, name);
            return path is null ? Error(404, $"no file '{Short(name)}' for job '{Short(id)}'") : Results.File(path, "image/png");
        }).WithName("GetFile").Produces(200, contentType: "image/png").Produces<ApiError>(404);
    }

    private static IResult CancelResult(JobQueue queue, string id)
    {
        var outcome = queue.Cancel(id);
        if (outcome == CancelOutcome.NotFound) return NotFound(id);
        var job = queue.Get(id);
        return Results.Json(new CancelView(id, outcome.ToString().ToLowerInvariant(), job is null ? null : JobView.From(job)));
    }

    private static IResult NotFound(string id) => Error(404, $"no job '{Short(id)}'");

    private static IResult Error(int status, string message) => Results.Json(new ApiError(message, status), statusCode: status);

    private static string Short(string s) => s.Length <= 40 ? s : s[..40] + "...";

    /// <summary>The native body as a job request, with `generate`'s defaults.</summary>
    public static JobRequest ToRequest(GenerateBody b, JobLimits limits)
    {
        int width = b.Width ?? 0, height = b.Height ?? 0;
        if (b.Size is string s)
        {
            if (b.Width is not null || b.Height is not null) throw new JobRequestException("give size or width/height, not both");
            var p = WireParsing.ParseSize(s, "size");
            (width, height) = (p.Width, p.Height);
        }
        if (width < 0 || height < 0) throw new JobRequestException($"size {width}x{height} must be positive");
        long seed = b.Seed is null or -1 ? WireParsing.RandomSeed() : b.Seed.Value;
        return new JobRequest
        {
            Model = b.Model,
            Generation = new GenerationRequest(b.Prompt ?? throw new JobRequestException("prompt is missing"))
            {
                NegativePrompt = b.NegativePrompt, Seed = seed, Steps = b.Steps ?? 0, Guidance = b.Guidance,
                Width = width, Height = height, NumImages = b.NumImages ?? 1,
            },
            UseModelDefaultSteps = b.Steps is null,
            Method = WireParsing.ParseMethod(b.Method),
            Scheduler = b.Scheduler,
            BaseSize = b.BaseSize is null ? null : WireParsing.ParseSize(b.BaseSize, "base_size"),
            PivotStrength = b.PivotStrength,
            StageOverrides = WireParsing.StageOverrides(b.StageSteps, b.StageStrength, b.StageGuidance),
            PivotMode = WireParsing.ParsePivotMode(b.PivotMode),
            VaeTiling = WireParsing.ParseVaeTiling(b.VaeTiling),
            Upsamplers = b.Upsamplers,
            Loras = Loras(b.Loras),
            PreviewEvery = b.PreviewEvery ?? 5,
            Origin = "native",
            ParametersJson = JsonSerializer.Serialize(WithSeed(b, seed)),
        };
    }

    /// <summary>The body's LoRAs (names are checked against the served table when the job is submitted).</summary>
    private static IReadOnlyList<SelfCascade.Server.Extras.LoraUse> Loras(LoraBody[]? loras) =>
        (loras ?? []).Select((l, i) => new SelfCascade.Server.Extras.LoraUse(
            l?.Name ?? throw new JobRequestException($"loras[{i}]: name is missing"), l.Scale ?? 1.0) { TextEncoderScale = l.TextEncoderScale }).ToList();

    private static GenerateBody WithSeed(GenerateBody b, long seed)
    {
        b.Seed = seed;
        return b;
    }

    public static JobRequest ToRequest(UpscaleBody b, JobQueue queue)
    {
        var limits = queue.Limits;
        SelfCascade.Imaging.RgbImage image;
        string source;
        if (b.JobId is not null)
        {
            if (b.Image is not null) throw new JobRequestException("give image or job_id, not both");
            var job = queue.Get(b.JobId) ?? throw new JobRequestException($"no job '{Short(b.JobId)}'", 404);
            int index = b.ImageIndex ?? 0;
            if (index < 0 || index >= job.Images.Count) throw new JobRequestException($"job {job.Id} has no image {index}");
            var path = queue.Outputs.Find(job.Id, job.Images[index]) ?? throw new JobRequestException("the image file is missing", 404);
            image = WireParsing.DecodeImage(File.ReadAllBytes(path), limits.MaxInputPixels);
            source = $"job {job.Id} image {index}";
        }
        else
        {
            image = WireParsing.DecodeImage(b.Image, limits.MaxInputPixels);
            source = "upload";
        }
        long seed = b.Seed is null or -1 ? WireParsing.RandomSeed() : b.Seed.Value;
        return new JobRequest
        {
            Model = b.Model,
            Kind = JobKind.Upscale,
            Generation = new GenerationRequest(b.Prompt ?? "") { NegativePrompt = b.NegativePrompt, Seed = seed, Steps = b.Steps ?? 50, Guidance = b.Guidance },
            Scheduler = b.Scheduler,
            PivotStrength = b.PivotStrength,
            StageOverrides = WireParsing.StageOverrides(b.StageSteps, b.StageStrength, b.StageGuidance),
            PivotMode = WireParsing.ParsePivotMode(b.PivotMode),
            VaeTiling = WireParsing.ParseVaeTiling(b.VaeTiling),
            PreviewEvery = b.PreviewEvery ?? 5,
            Upsamplers = b.Upsamplers,
            Loras = Loras(b.Loras),
            Image = image,
            Scale = b.Scale ?? 2,
            Origin = "native",
            ExtraMetadata = new Dictionary<string, string> { ["source_image"] = source },
            ParametersJson = JsonSerializer.Serialize(new
            {
                kind = "upscale", model = b.Model, source, input_width = image.Width, input_height = image.Height, scale = b.Scale ?? 2,
                prompt = b.Prompt, negative_prompt = b.NegativePrompt, seed, steps = b.Steps ?? 50, guidance = b.Guidance, scheduler = b.Scheduler,
                pivot_strength = b.PivotStrength, upsamplers = b.Upsamplers, loras = b.Loras,
            }),
        };
    }
}
