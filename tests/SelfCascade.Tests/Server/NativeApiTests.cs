using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using SelfCascade.Imaging;
using SelfCascade.Server.Jobs;
using SelfCascade.Tests.Cli;

namespace SelfCascade.Tests.Server;

/// <summary>
/// The native API over real HTTP on loopback with the embedded model: results equal the CLI's for the same options,
/// events arrive in order with stage images and previews, cancellation stops a running job within one step.
/// </summary>
public sealed class NativeApiTests(ServerFixture fixture) : IClassFixture<ServerFixture>, IDisposable
{
    private readonly TestServer _s = fixture.Server;
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-native-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task TextToImageIsTheGenerateCommandsPngWithItsStagesAndEvents()
    {
        var events = new ConcurrentQueue<JobEvent>();
        void Collect(JobEvent e) => events.Enqueue(e);
        _s.Jobs.EventPublished += Collect;
        string id;
        try
        {
            id = await _s.SubmitAsync(new { prompt = "red heart", seed = 7, size = "64x64", steps = 4, preview_every = 1 });
            var sse = await _s.ReadEventsAsync(id);
            var job = await _s.WaitAsync(id);
            Assert.Equal("done", job.GetProperty("status").GetString());
            Assert.Equal(64, job.GetProperty("width").GetInt32());
            // The SSE stream ends with the final event carrying the record; sequence numbers only grow.
            Assert.Equal("done", sse[^1].Type);
            Assert.Equal("done", sse[^1].Data.GetProperty("job").GetProperty("status").GetString());
            var seqs = sse.Select(e => e.Data.GetProperty("seq").GetInt64()).ToList();
            Assert.Equal(seqs.OrderBy(x => x).Distinct(), seqs);
        }
        finally
        {
            _s.Jobs.EventPublished -= Collect;
        }
        var mine = events.Where(e => e.JobId == id).ToList();
        Assert.Equal([JobEventTypes.Queued, JobEventTypes.Started], mine.Take(2).Select(e => e.Type));
        Assert.Equal(JobEventTypes.Done, mine[^1].Type);
        // Every denoising step of both stages (32 -> 64: 4 base steps, then 4 x 0.5 = 2), in order.
        var steps = mine.Where(e => e.Type == JobEventTypes.Progress && e.Phase == "denoise").Select(e => (e.Stage, e.Step, e.TotalSteps)).ToList();
        Assert.Equal([(0, 1, 4), (0, 2, 4), (0, 3, 4), (0, 4, 4), (1, 1, 2), (1, 2, 2)], steps.Select(t => (t.Stage!.Value, t.Step!.Value, t.TotalSteps!.Value)));
        var fractions = mine.Where(e => e.Fraction is not null).Select(e => e.Fraction!.Value).ToList();
        Assert.Equal(fractions.Order(), fractions);
        // Previews every step but a stage's last; the stage-0 image once, before stage 1 starts.
        Assert.Equal([(0, 1), (0, 2), (0, 3), (1, 1)], mine.Where(e => e.Type == JobEventTypes.Preview).Select(e => (e.Stage!.Value, e.Step!.Value)));
        var stage = Assert.Single(mine, e => e.Type == JobEventTypes.Stage);
        Assert.Equal((0, 32, 32), (stage.Stage!.Value, stage.Width!.Value, stage.Height!.Value));
        Assert.True(mine.IndexOf(stage) < mine.FindIndex(e => e.Stage == 1 && e.Type == JobEventTypes.Progress));

        // The CLI, same options: the same PNG, byte for byte (pixels and metadata chunks), and the same stage image
        // (a second run with --save-stages, whose final PNG also carries image_index).
        var cliOut = Path.Combine(_dir, "cli.png");
        var (code, _, err) = CliRunner.Run("generate", "--prompt", "red heart", "--seed", "7", "--size", "64x64", "--steps", "4", "--out", cliOut);
        Assert.True(code == 0, err);
        var served = await _s.Client.GetByteArrayAsync($"/api/jobs/{id}/images/0");
        Assert.Equal(Lines(RgbImage.ReadPngText(cliOut)), Lines(PngText.Read(served)));
        Assert.Equal(await File.ReadAllBytesAsync(cliOut), served);
        var stagesDir = Path.Combine(_dir, "stages");
        (code, _, err) = CliRunner.Run("generate", "--prompt", "red heart", "--seed", "7", "--size", "64x64", "--steps", "4",
            "--out", Path.Combine(_dir, "cli2.png"), "--save-stages", stagesDir);
        Assert.True(code == 0, err);
        var cliStage = RgbImage.Load(Path.Combine(stagesDir, "stage0_32x32.png"));
        var servedStage = await _s.Client.GetByteArrayAsync($"/api/jobs/{id}/files/stage0_32x32.png");
        Assert.Equal(cliStage.Pixels, Decode(servedStage).Pixels);
        Assert.Equal(cliStage.Pixels, Decode(stage.Png!).Pixels);

        // A finished job kept in memory holds no image bytes: a late subscriber gets the stage event with its URL only.
        var late = await _s.ReadEventsAsync(id);
        var lateStage = Assert.Single(late, e => e.Type == "stage");
        Assert.Equal(JsonValueKind.Null, lateStage.Data.GetProperty("image").ValueKind);
        Assert.Equal($"/api/jobs/{id}/files/stage0_32x32.png", lateStage.Data.GetProperty("url").GetString());
        Assert.DoesNotContain(late, e => e.Type == "preview");
    }

    [Fact]
    public async Task UpscaleOfAnUploadedImageEqualsTheUpscaleCommand()
    {
        var input = new RgbImage(32, 32);
        for (int i = 0; i < input.Pixels.Length; i++) input.Pixels[i] = (byte)(i * 7 % 251);
        var inputPath = Path.Combine(_dir, "in.png");
        input.SavePng(inputPath);
        var id = await _s.SubmitAsync(new
        {
            image = Convert.ToBase64String(await File.ReadAllBytesAsync(inputPath)), scale = 2, prompt = "a face", seed = 5, steps = 4,
        }, "/api/upscale");
        var job = await _s.WaitAsync(id);
        Assert.Equal("done", job.GetProperty("status").GetString());
        Assert.Equal((64, 64), (job.GetProperty("width").GetInt32(), job.GetProperty("height").GetInt32()));
        var cliOut = Path.Combine(_dir, "up.png");
        var (code, _, err) = CliRunner.Run("upscale", "--image", inputPath, "--scale", "2", "--prompt", "a face", "--seed", "5", "--steps", "4", "--out", cliOut);
        Assert.True(code == 0, err);
        var served = await _s.Client.GetByteArrayAsync($"/api/jobs/{id}/images/0");
        Assert.Equal(RgbImage.Load(cliOut).Pixels, Decode(served).Pixels);
        var meta = PngText.Read(served);
        Assert.Equal("upscale", meta["method"]);
        Assert.Equal("2", meta["scale"]);

        // "Upscale this" on a finished job's image, by id.
        var again = await _s.SubmitAsync(new { job_id = id, scale = 2, prompt = "a face", seed = 5, steps = 4, preview_every = 0 }, "/api/upscale");
        var job2 = await _s.WaitAsync(again);
        Assert.Equal("done", job2.GetProperty("status").GetString());
        Assert.Equal(128, job2.GetProperty("width").GetInt32());
    }

    [Fact]
    public async Task CancelStopsARunningJobWithinOneDenoisingStep()
    {
        var steps = new ConcurrentQueue<int>();
        var twoSteps = new TaskCompletionSource();
        string? id = null;
        void Collect(JobEvent e)
        {
            if (e.JobId != id || e.Type != JobEventTypes.Progress || e.Phase != "denoise") return;
            steps.Enqueue(e.Step!.Value);
            if (e.Step >= 2) twoSteps.TrySetResult();
        }
        _s.Jobs.EventPublished += Collect;
        try
        {
            // 400 steps at 64x64 run for many seconds: only the cancel can end it this soon.
            id = await _s.SubmitAsync(new { prompt = "a cat", seed = 1, size = "64x64", steps = 400, method = "direct", preview_every = 0 });
            await twoSteps.Task.WaitAsync(TimeSpan.FromMinutes(2));
            int atCancel = steps.Max();
            using var response = await _s.Client.PostAsync($"/api/jobs/{id}/cancel", null);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal("requested", body.GetProperty("outcome").GetString());
            var job = await _s.WaitAsync(id, TimeSpan.FromSeconds(60));
            Assert.Equal("cancelled", job.GetProperty("status").GetString());
            Assert.Contains("cancelled", job.GetProperty("error").GetString());
            Assert.True(steps.Max() <= atCancel + 1, $"ran to step {steps.Max()} after a cancel at step {atCancel}");
            Assert.Empty(job.GetProperty("images").EnumerateArray());
            // A second cancel changes nothing; the server keeps serving.
            using var again = await _s.Client.DeleteAsync($"/api/jobs/{id}");
            Assert.Equal("alreadyfinished", JsonDocument.Parse(await again.Content.ReadAsStringAsync()).RootElement.GetProperty("outcome").GetString());
        }
        finally
        {
            _s.Jobs.EventPublished -= Collect;
        }
        var next = await _s.SubmitAsync(new { prompt = "a dog", seed = 2, steps = 2 });
        Assert.Equal("done", (await _s.WaitAsync(next)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task ModelsQueueListAndOpenApiDescribeTheServer()
    {
        var models = JsonDocument.Parse(await _s.Client.GetStringAsync("/api/models")).RootElement;
        Assert.Equal("emoji-base", models.GetProperty("default").GetString());
        var m = Assert.Single(models.GetProperty("models").EnumerateArray());
        Assert.Equal(32, m.GetProperty("native_size").GetInt32());
        Assert.Equal(25, m.GetProperty("default_steps").GetInt32());
        Assert.Contains("dpm++2m", models.GetProperty("schedulers").EnumerateArray().Select(x => x.GetString()));

        var openapi = JsonDocument.Parse(await _s.Client.GetStringAsync("/openapi.json")).RootElement;
        Assert.StartsWith("3.", openapi.GetProperty("openapi").GetString());
        var paths = openapi.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();
        foreach (var p in new[] { "/api/jobs", "/api/upscale", "/api/jobs/{id}", "/api/jobs/{id}/events", "/api/jobs/{id}/cancel", "/api/jobs/{id}/images/{index}", "/api/models", "/api/queue" })
            Assert.Contains(p, paths);
        // The submit body's schema carries the wire names.
        Assert.Contains("pivot_strength", openapi.GetRawText());

        var queue = JsonDocument.Parse(await _s.Client.GetStringAsync("/api/queue")).RootElement;
        Assert.Equal(16, queue.GetProperty("max_queue").GetInt32());
        var list = JsonDocument.Parse(await _s.Client.GetStringAsync("/api/jobs?limit=5")).RootElement;
        Assert.True(list.GetProperty("jobs").GetArrayLength() <= 5);
    }

    private static string Lines(IReadOnlyDictionary<string, string> meta) =>
        string.Join("\n", meta.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}"));

    private static RgbImage Decode(byte[] png) => SelfCascade.Server.Api.WireParsing.DecodeImage(png, long.MaxValue);
}
