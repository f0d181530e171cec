using System.Net;
using System.Text.Json;
using SelfCascade.Pipelines;
using SelfCascade.Server;
using SelfCascade.Server.Jobs;
using SelfCascade.Server.Models;
using SelfCascade.Server.Storage;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Server;

/// <summary>The engine's limits and faults: full queue, API key, persistence across a restart, model LRU, a failing job.</summary>
public sealed class ServerEngineTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-engine-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task AFullQueueAnswers429WithRetryAfterAndQueuedJobsCancelAtOnce()
    {
        await using var s = await TestServer.StartAsync(maxQueue: 1);
        var long1 = await s.SubmitAsync(new { prompt = "a", size = "64x64", steps = 400, method = "direct", preview_every = 0 });
        await WaitForStatus(s, long1, "running");
        var queued = await s.SubmitAsync(new { prompt = "b", steps = 2 });
        Assert.Equal(0, (await s.GetJobAsync(queued)).GetProperty("queue_position").GetInt32());
        using var refused = await s.Client.PostAsync("/api/jobs", Json(new { prompt = "c", steps = 2 }));
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.True(refused.Headers.RetryAfter?.Delta?.TotalSeconds >= 1, "Retry-After missing");
        Assert.Contains("queue is full", JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());
        using var cancel = await s.Client.PostAsync($"/api/jobs/{queued}/cancel", null);
        var body = JsonDocument.Parse(await cancel.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("cancelled", body.GetProperty("outcome").GetString());
        Assert.Equal("cancelled", body.GetProperty("job").GetProperty("status").GetString());
        // The place is free again.
        var next = await s.SubmitAsync(new { prompt = "d", steps = 2 });
        Assert.Equal(CancelOutcome.Requested, s.Jobs.Cancel(long1));
        Assert.Equal("cancelled", (await s.WaitAsync(long1)).GetProperty("status").GetString());
        Assert.Equal("done", (await s.WaitAsync(next)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task AnApiKeyIsRequiredOffLoopbackAndCheckedOnEveryRequest()
    {
        var options = new ServerOptions { Models = [new ModelSpec("m", TestServer.EmbeddedModel)], Host = "0.0.0.0", Port = 0, DataDir = _dir };
        var e = Assert.Throws<ArgumentException>(() => ServerApp.Build(options));
        Assert.Contains("API key", e.Message);

        await using var s = await TestServer.StartAsync(apiKey: "s3cret");
        using var anonymous = new HttpClient { BaseAddress = s.BaseAddress };
        foreach (var path in new[] { "/api/models", "/api/jobs", "/openapi.json", "/api/jobs/x/events" })
        {
            using var r = await anonymous.GetAsync(path);
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
            Assert.Equal("application/json", r.Content.Headers.ContentType?.MediaType);
        }
        using var wrong = new HttpRequestMessage(HttpMethod.Get, "/api/models");
        wrong.Headers.Add("X-API-Key", "s3cret!");
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.SendAsync(wrong)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await s.Client.GetAsync("/api/models")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/api/models?api_key=s3cret")).StatusCode);
        using var header = new HttpRequestMessage(HttpMethod.Get, "/api/models");
        header.Headers.Add("X-API-Key", "s3cret");
        Assert.Equal(HttpStatusCode.OK, (await anonymous.SendAsync(header)).StatusCode);
    }

    [Fact]
    public async Task RecordsAndImagesSurviveARestartAndUnfinishedJobsAreMarkedInterrupted()
    {
        string done;
        byte[] png;
        await using (var s = await TestServer.StartAsync(dataDir: _dir))
        {
            done = await s.SubmitAsync(new { prompt = "a star", seed = 3, steps = 2 });
            Assert.Equal("done", (await s.WaitAsync(done)).GetProperty("status").GetString());
            png = await s.Client.GetByteArrayAsync($"/api/jobs/{done}/images/0");
        }
        // What a killed process leaves: rows still queued and running (written straight into the store).
        string running = Guid.NewGuid().ToString("D"), queued = Guid.NewGuid().ToString("D");
        using (var store = new JobStore(Path.Combine(_dir, "jobs.db")))
        {
            Assert.Equal("wal", store.JournalMode());
            foreach (var (id, status) in new[] { (running, JobStatus.Running), (queued, JobStatus.Queued) })
                store.Insert(new JobInfo
                {
                    Id = id, Status = status, Kind = "txt2img", Model = "emoji-base", Origin = "native", ParametersJson = "{}", CreatedAt = DateTimeOffset.UtcNow,
                });
        }
        await using (var s = await TestServer.StartAsync(dataDir: _dir))
        {
            var job = await s.GetJobAsync(done);
            Assert.Equal("done", job.GetProperty("status").GetString());
            Assert.Equal(png, await s.Client.GetByteArrayAsync($"/api/jobs/{done}/images/0"));
            var r = await s.GetJobAsync(running);
            Assert.Equal("interrupted", r.GetProperty("status").GetString());
            Assert.Contains("while this job was running", r.GetProperty("error").GetString());
            var q = await s.GetJobAsync(queued);
            Assert.Equal("interrupted", q.GetProperty("status").GetString());
            Assert.Contains("before this job started", q.GetProperty("error").GetString());
            // The events of a stored job: its final state.
            var events = await s.ReadEventsAsync(running);
            Assert.Equal("interrupted", Assert.Single(events).Type);
            var list = JsonDocument.Parse(await s.Client.GetStringAsync("/api/jobs?status=interrupted")).RootElement.GetProperty("jobs");
            Assert.Equal(2, list.GetArrayLength());
        }
    }

    [Fact]
    public async Task ModelsLoadLazilyAndTheLeastRecentlyUsedIsUnloadedBeyondTheBudget()
    {
        var a = TinyModelFolders.BuildSd(Path.Combine(_dir, "a"));
        var b = TinyModelFolders.BuildSd(Path.Combine(_dir, "b"));
        long oneModel;
        using (var probe = StableDiffusionPipeline.FromPretrained(a)) oneModel = ModelRegistry.ParameterBytes(probe);
        var loads = new List<string>();
        StableDiffusionPipeline Load(string path, PipelineOptions o)
        {
            lock (loads) loads.Add(Path.GetFileName(path));
            return StableDiffusionPipeline.FromPretrained(path, o);
        }
        // Room for one model (and a half): B's load unloads A, A's load unloads B.
        await using (var s = await TestServer.StartAsync([new ModelSpec("a", a), new ModelSpec("b", b)], modelMemoryBudget: oneModel * 3 / 2, loader: Load))
        {
            Assert.Empty(loads);
            Assert.All(s.Models.List(), m => Assert.False(m.Loaded));
            foreach (var m in new[] { "a", "b", "a", "a" })
            {
                var id = await s.SubmitAsync(new { prompt = "x", model = m, steps = 2, size = "32x32" });
                Assert.Equal("done", (await s.WaitAsync(id)).GetProperty("status").GetString());
                var listed = s.Models.List();
                Assert.Equal([m], listed.Where(x => x.Loaded).Select(x => x.Name));
                Assert.Equal(oneModel, listed.Single(x => x.Loaded).ResidentBytes);
            }
            Assert.Equal(["a", "b", "a"], loads);
        }
        loads.Clear();
        // Room for both: each loads once.
        await using (var s = await TestServer.StartAsync([new ModelSpec("a", a), new ModelSpec("b", b)], modelMemoryBudget: oneModel * 3, loader: Load))
        {
            foreach (var m in new[] { "a", "b", "a", "b" })
                Assert.Equal("done", (await s.WaitAsync(await s.SubmitAsync(new { prompt = "x", model = m, steps = 2, size = "32x32" }))).GetProperty("status").GetString());
            Assert.Equal(["a", "b"], loads);
        }
    }

    [Fact]
    public async Task AFailingJobFailsAloneWithItsReasonAndTheServerKeepsServing()
    {
        var broken = TinyModelFolders.BuildSd(Path.Combine(_dir, "broken"));
        StableDiffusionPipeline Load(string path, PipelineOptions o) => path == broken
            ? throw new InvalidOperationException("CUDA out of memory. Tried to allocate 20.00 GiB")
            : StableDiffusionPipeline.FromPretrained(path, o);
        await using var s = await TestServer.StartAsync([new ModelSpec("emoji", TestServer.EmbeddedModel), new ModelSpec("broken", broken)], loader: Load);
        var bad = await s.SubmitAsync(new { prompt = "x", model = "broken", steps = 2 });
        var good = await s.SubmitAsync(new { prompt = "x", steps = 2 });
        var failed = await s.WaitAsync(bad);
        Assert.Equal("failed", failed.GetProperty("status").GetString());
        Assert.Equal("CUDA out of memory. Tried to allocate 20.00 GiB", failed.GetProperty("error").GetString());
        Assert.Equal("done", (await s.WaitAsync(good)).GetProperty("status").GetString());
        var events = await s.ReadEventsAsync(bad);
        Assert.Equal("failed", events[^1].Type);
        Assert.Contains("out of memory", events[^1].Data.GetProperty("message").GetString());
    }

    private static StringContent Json(object o) => new(JsonSerializer.Serialize(o), System.Text.Encoding.UTF8, "application/json");

    private static async Task WaitForStatus(TestServer s, string id, string status)
    {
        var end = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while ((await s.GetJobAsync(id)).GetProperty("status").GetString() != status)
        {
            Assert.True(DateTime.UtcNow < end, $"job {id} never {status}");
            await Task.Delay(20);
        }
    }
}
