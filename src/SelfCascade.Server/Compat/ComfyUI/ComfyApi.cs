using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using SelfCascade.Pipelines;
using SelfCascade.Server.Api;
using SelfCascade.Server.Jobs;

namespace SelfCascade.Server.Compat.ComfyUI;

/// <summary>
/// ComfyUI's server API for API-format workflows: POST /prompt (validated with ComfyUI's node_errors, then run as one
/// job by <see cref="ComfyExecutor"/>), GET /history[/{id}], GET /view, GET|POST /queue, POST /interrupt,
/// GET /object_info[/{class}], POST /upload/image, GET /prompt, GET /system_stats, and the /ws WebSocket with ComfyUI's
/// messages (status, execution_start, execution_cached, executing, progress, executed, execution_success,
/// execution_error, execution_interrupted). Prompt ids are job ids. docs/SERVER-COMPAT.md lists what is mapped.
/// </summary>
public sealed class ComfyApi : IEndpointModule
{
    public const string Origin = "comfyui";

    public void Map(WebApplication app)
    {
        var queue = app.Services.GetRequiredService<JobQueue>();
        var options = app.Services.GetRequiredService<ServerOptions>();
        var inputs = new ComfyInputStore(options.DataDir);
        var hub = new ComfyHub();
        ComfyNodeCatalog Catalog() => new(new ComfyCatalogContext
        {
            Checkpoints = queue.Models.Names, InputImages = inputs.List(),
            Upsamplers = queue.Extras.UpsamplerNames, Loras = queue.Extras.LoraNames,
            MaxResolution = queue.Limits.MaxSide, MaxBatch = queue.Limits.MaxImages, MaxSteps = queue.Limits.MaxSteps,
        });
        JsonObject QueueInfo() => new() { ["exec_info"] = new JsonObject { ["queue_remaining"] = queue.QueuedCount + (queue.Running is null ? 0 : 1) } };
        queue.EventPublished += ev =>
        {
            if (ev.Type is JobEventTypes.Queued or JobEventTypes.Started || ev.IsFinal) hub.Broadcast("status", new JsonObject { ["status"] = QueueInfo() });
        };

        app.UseWebSockets();
        app.Map("/ws", async (HttpContext ctx) =>
        {
            if (!ctx.WebSockets.IsWebSocketRequest)
            {
                await ErrorMiddleware.WriteAsync(ctx, 400, "/ws is a WebSocket endpoint");
                return;
            }
            string sid = ctx.Request.Query["clientId"].ToString();
            if (sid.Length is 0 or > 128) sid = Guid.NewGuid().ToString("N");
            using var socket = await ctx.WebSockets.AcceptWebSocketAsync();
            await hub.ServeAsync(socket, sid, QueueInfo(), ctx.RequestAborted);
        });

        app.MapGet("/prompt", () => Results.Json(QueueInfo()));

        app.MapPost("/prompt", Handler(async ctx =>
        {
            JsonObject body;
            try { body = JsonNode.Parse(await ReadBody(ctx), documentOptions: new JsonDocumentOptions { MaxDepth = 64 }) as JsonObject ?? throw new JsonException("not an object"); }
            catch (JsonException e) { return Results.Json(new JsonObject { ["error"] = ComfyError.Create("invalid_prompt", $"Invalid JSON: {e.Message}", "").ToJson(), ["node_errors"] = new JsonObject() }, statusCode: 400); }
            if (body["prompt"] is null) return Results.Json(new JsonObject { ["error"] = "no prompt", ["node_errors"] = new JsonArray() }, statusCode: 400);
            ComfyGraph graph;
            try { graph = ComfyGraph.Parse(body["prompt"]); }
            catch (ComfyPromptException e) { return Results.Json(new JsonObject { ["error"] = e.Error.ToJson(), ["node_errors"] = new JsonObject() }, statusCode: 400); }
            var validation = ComfyValidator.Validate(graph, Catalog());
            if (!validation.Ok) return Results.Json(validation.ErrorBody(), statusCode: 400);
            double number = body["number"] is JsonValue nv && ComfyValues.ToFloat(nv) is decimal n ? (double)n : hub.NextNumber();
            var extra = body["extra_data"] as JsonObject ?? new JsonObject();
            string? clientId = ComfyValues.ToStr(body["client_id"]);
            if (clientId is not null) extra["client_id"] = clientId;
            var record = new ComfyPromptRecord(number, clientId, (JsonObject)graph.Source.DeepClone(), (JsonObject)extra.DeepClone(), validation.Outputs);
            var model = graph.Nodes.Where(x => x.ClassType == "CheckpointLoaderSimple").Select(x => ComfyValues.ToStr(x.Inputs["ckpt_name"])).FirstOrDefault();
            var job = queue.Submit(new JobRequest
            {
                Model = model, Kind = JobKind.Custom, CustomKind = "comfyui-graph", Origin = Origin,
                Generation = new GenerationRequest(FirstPrompt(graph) ?? "ComfyUI workflow"),
                ParametersJson = new JsonObject { ["prompt"] = graph.Source.DeepClone(), ["client_id"] = clientId }.ToJsonString(),
                PreviewEvery = 0,
                Custom = ctx2 => RunGraph(ctx2, graph, validation.Outputs, record, hub, inputs),
            });
            hub.AddPrompt(job.Id, record);
            return Results.Json(new JsonObject { ["prompt_id"] = job.Id, ["number"] = number, ["node_errors"] = validation.NodeErrors.DeepClone() });
        }));

        app.MapGet("/queue", () =>
        {
            var (running, queued) = queue.Snapshot();
            JsonArray Items(IEnumerable<JobInfo> jobs) => new(jobs.Where(j => j.Origin == Origin)
                .Select(j => (Id: j.Id, Record: hub.Prompt(j.Id))).Where(x => x.Record is { Finished: false })
                .Select(x => (JsonNode?)x.Record!.QueueItem(x.Id)).ToArray());
            return Results.Json(new JsonObject
            {
                ["queue_running"] = Items(running is null ? [] : [running]),
                ["queue_pending"] = Items(queued),
            });
        });

        app.MapPost("/queue", Handler(async ctx =>
        {
            var body = await ParseObject(ctx);
            var (_, queued) = queue.Snapshot();
            if (body["clear"] is JsonValue c && c.TryGetValue<bool>(out var clear) && clear)
                foreach (var j in queued.Where(j => j.Origin == Origin)) queue.Cancel(j.Id);
            if (body["delete"] is JsonArray del)
                foreach (var id in del.Select(ComfyValues.ToStr).OfType<string>())
                    if (queued.Any(j => j.Id == id && j.Origin == Origin)) queue.Cancel(id);
            return Results.Ok();
        }));

        app.MapPost("/interrupt", Handler(async ctx =>
        {
            // ComfyUI interrupts what is running; here only a running ComfyUI prompt (optionally the one named).
            var body = ctx.Request.ContentLength is > 0 ? await ParseObject(ctx) : new JsonObject();
            var only = ComfyValues.ToStr(body["prompt_id"]);
            if (queue.Running is { } r && r.Origin == Origin && (only is null || only == r.Id)) queue.Cancel(r.Id);
            return Results.Ok();
        }));

        app.MapGet("/history", (int? max_items) =>
        {
            int max = Math.Clamp(max_items ?? 200, 1, 1000);
            var jobs = queue.List(max * 2 + 50).Where(j => j.Origin == Origin).Take(max).Reverse();
            var o = new JsonObject();
            foreach (var j in jobs)
                if (hub.History(j.Id, JobDir(queue, j.Id)) is { } h) o[j.Id] = h.DeepClone();
            return Results.Json(o);
        });

        app.MapGet("/history/{prompt_id}", (string prompt_id) =>
        {
            var o = new JsonObject();
            if (hub.History(prompt_id, JobDir(queue, prompt_id)) is { } h) o[prompt_id] = h.DeepClone();
            return Results.Json(o);
        });

        app.MapPost("/history", Handler(async ctx =>
        {
            var body = await ParseObject(ctx);
            if (body["clear"] is JsonValue c && c.TryGetValue<bool>(out var clear) && clear)
            {
                foreach (var j in queue.List(1000).Where(j => j.Origin == Origin)) hub.DeleteHistory(j.Id, JobDir(queue, j.Id));
                hub.ForgetHistoryCache();
            }
            if (body["delete"] is JsonArray del)
                foreach (var id in del.Select(ComfyValues.ToStr).OfType<string>()) hub.DeleteHistory(id, JobDir(queue, id));
            return Results.Ok();
        }));

        app.MapGet("/view", (string? filename, string? subfolder, string? type) =>
        {
            string? path = (type ?? "output") switch
            {
                "output" or "temp" => subfolder is null ? null : queue.Outputs.Find(subfolder, filename ?? ""),
                "input" => string.IsNullOrEmpty(subfolder) ? inputs.Find(filename) : null,
                _ => null,
            };
            return path is null
                ? Results.Json(new { error = "image not found", status = 404 }, statusCode: 404)
                : Results.File(path, "image/png", Path.GetFileName(path));
        });

        app.MapGet("/object_info", () => Results.Json(Catalog().ObjectInfo()));
        app.MapGet("/object_info/{node_class}", (string node_class) =>
        {
            var o = new JsonObject();
            if (Catalog().Find(node_class) is { } spec) o[node_class] = spec.ToObjectInfo();
            return Results.Json(o);
        });

        app.MapPost("/upload/image", Handler(async ctx =>
        {
            if (!ctx.Request.HasFormContentType) return Results.Json(new { error = "multipart/form-data with an 'image' file expected", status = 400 }, statusCode: 400);
            var form = await ctx.Request.ReadFormAsync(ctx.RequestAborted);
            var file = form.Files["image"];
            if (file is null || file.Length == 0) return Results.Json(new { error = "no 'image' file in the form", status = 400 }, statusCode: 400);
            var type = form["type"].ToString();
            if (type is not ("" or "input")) return Results.Json(new { error = $"upload type '{type}' is not supported (only input)", status = 400 }, statusCode: 400);
            if (!string.IsNullOrEmpty(form["subfolder"].ToString())) return Results.Json(new { error = "subfolders are not supported", status = 400 }, statusCode: 400);
            using var ms = new MemoryStream();
            await file.CopyToAsync(ms, ctx.RequestAborted);
            var image = WireParsing.DecodeImage(ms.ToArray(), queue.Limits.MaxInputPixels, "image");
            bool overwrite = form["overwrite"].ToString() is "true" or "1";
            var name = inputs.Save(image, file.FileName, overwrite);
            return Results.Json(new JsonObject { ["name"] = name, ["subfolder"] = "", ["type"] = "input" });
        }));

        app.MapGet("/system_stats", () => Results.Json(new JsonObject
        {
            ["system"] = new JsonObject
            {
                ["os"] = OperatingSystem.IsWindows() ? "nt" : "posix",
                ["ram_total"] = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes,
                ["ram_free"] = Math.Max(0, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes - Environment.WorkingSet),
                ["comfyui_version"] = "selfcascade",
                ["python_version"] = "",
                ["pytorch_version"] = "libtorch (TorchSharp)",
                ["embedded_python"] = false,
                ["argv"] = new JsonArray(),
            },
            ["devices"] = new JsonArray(new JsonObject
            {
                ["name"] = options.Pipeline.Device, ["type"] = options.Pipeline.Device.StartsWith("cuda", StringComparison.Ordinal) ? "cuda" : "cpu",
                ["index"] = 0, ["vram_total"] = 0, ["vram_free"] = 0, ["torch_vram_total"] = 0, ["torch_vram_free"] = 0,
            }),
        }));
        app.MapGet("/embeddings", () => Results.Json(new JsonArray()));
        app.MapGet("/extensions", () => Results.Json(new JsonArray()));
    }

    /// <summary>The graph job: ComfyUI's execution messages around <see cref="ComfyExecutor.Execute"/>, then the history entry.</summary>
    private static CustomJobResult RunGraph(CustomJobContext job, ComfyGraph graph, IReadOnlyList<string> outputs, ComfyPromptRecord record,
        ComfyHub hub, ComfyInputStore inputs)
    {
        var id = job.JobId;
        var sid = record.ClientId;
        var messages = new JsonArray();
        void Status(string type, JsonObject data)
        {
            messages.Add(new JsonArray(JsonValue.Create(type), data.DeepClone()));
            hub.Send(sid, type, data);
        }
        var sw = Stopwatch.StartNew();
        var host = new ComfyServerHost(job, inputs);
        var events = new Events(hub, sid, id, job);
        Status("execution_start", new JsonObject { ["prompt_id"] = id, ["timestamp"] = Now() });
        Status("execution_cached", new JsonObject { ["nodes"] = new JsonArray(), ["prompt_id"] = id, ["timestamp"] = Now() });
        IReadOnlyDictionary<string, JsonObject> ui;
        try
        {
            ui = ComfyExecutor.Execute(graph, outputs, host, events, job.Cancellation);
        }
        catch (ComfyExecutionException e)
        {
            var executed = new JsonArray(e.Executed.Select(x => (JsonNode?)JsonValue.Create(x)).ToArray());
            if (e.Interrupted)
                Status("execution_interrupted", new JsonObject
                {
                    ["prompt_id"] = id, ["node_id"] = e.NodeId, ["node_type"] = e.ClassType, ["executed"] = executed, ["timestamp"] = Now(),
                });
            else
                Status("execution_error", new JsonObject
                {
                    ["prompt_id"] = id, ["node_id"] = e.NodeId, ["node_type"] = e.ClassType, ["executed"] = executed,
                    ["exception_message"] = e.InnerException?.Message ?? e.Message, ["exception_type"] = e.InnerException?.GetType().Name ?? "Exception",
                    ["traceback"] = new JsonArray(), ["current_inputs"] = new JsonObject(), ["current_outputs"] = new JsonObject(), ["timestamp"] = Now(),
                });
            record.Finished = true;
            Finish(new JsonObject(), "error", false);
            if (e.Interrupted) throw e.InnerException!;
            throw;
        }
        record.Finished = true;
        Status("execution_success", new JsonObject { ["prompt_id"] = id, ["timestamp"] = Now() });
        var outs = new JsonObject();
        foreach (var (node, o) in ui) outs[node] = o.DeepClone();
        Finish(outs, "success", true);
        return new CustomJobResult(host.Saved, host.FirstWidth, host.FirstHeight, 0, host.Timings(sw.Elapsed.TotalSeconds));

        void Finish(JsonObject outputsJson, string status, bool completed)
        {
            hub.SetHistory(id, new JsonObject
            {
                ["prompt"] = record.QueueItem(id),
                ["outputs"] = outputsJson,
                ["status"] = new JsonObject { ["status_str"] = status, ["completed"] = completed, ["messages"] = messages.DeepClone() },
                ["meta"] = new JsonObject(),
            }, job.OutputDir);
            // ComfyUI's prompt worker always ends a prompt with "executing" for node null.
            hub.Send(sid, "executing", new JsonObject { ["node"] = null, ["display_node"] = null, ["prompt_id"] = id });
        }
    }

    private sealed class Events(ComfyHub hub, string? sid, string promptId, CustomJobContext job) : IComfyEvents
    {
        public void Executing(string nodeId) =>
            hub.Send(sid, "executing", new JsonObject { ["node"] = nodeId, ["display_node"] = nodeId, ["prompt_id"] = promptId });

        public void Progress(string nodeId, int value, int max)
        {
            hub.Send(sid, "progress", new JsonObject { ["value"] = value, ["max"] = max, ["prompt_id"] = promptId, ["node"] = nodeId });
            job.Publish(new JobEvent
            {
                Sequence = 0, JobId = promptId, Type = JobEventTypes.Progress, Time = DateTimeOffset.UtcNow, Phase = "denoise",
                Step = value, TotalSteps = max, Fraction = max > 0 ? (double)value / max : null, Message = $"node {nodeId}",
            });
        }

        public void Executed(string nodeId, JsonObject output) =>
            hub.Send(sid, "executed", new JsonObject { ["node"] = nodeId, ["display_node"] = nodeId, ["output"] = output, ["prompt_id"] = promptId });
    }

    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    private static string? FirstPrompt(ComfyGraph g) =>
        g.Nodes.Where(n => n.ClassType == "CLIPTextEncode").Select(n => ComfyValues.ToStr(n.Inputs["text"])).FirstOrDefault(t => !string.IsNullOrWhiteSpace(t));

    private static string? JobDir(JobQueue queue, string id) =>
        Storage.OutputStore.IsValidJobId(id) ? queue.Outputs.JobDir(id) : null;

    private static Delegate Handler(Func<HttpContext, Task<IResult>> f) => f;

    private static async Task<string> ReadBody(HttpContext ctx)
    {
        using var reader = new StreamReader(ctx.Request.Body);
        return await reader.ReadToEndAsync(ctx.RequestAborted);
    }

    private static async Task<JsonObject> ParseObject(HttpContext ctx)
    {
        try { return JsonNode.Parse(await ReadBody(ctx)) as JsonObject ?? throw new JobRequestException("the body must be a JSON object"); }
        catch (JsonException e) { throw new JobRequestException("malformed JSON: " + e.Message); }
    }
}
