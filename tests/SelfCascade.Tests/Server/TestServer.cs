using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using SelfCascade.Cli;
using SelfCascade.Pipelines;
using SelfCascade.Server;
using SelfCascade.Server.Jobs;
using SelfCascade.Server.Models;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Server;

/// <summary>
/// The real server (Kestrel, the full middleware and endpoint set) on a free loopback port, serving the embedded
/// emoji model by default (or the given models, e.g. <see cref="TinyModelFolders"/>), with a temp data dir that is
/// deleted on dispose unless the caller gave its own. <c>await using var s = await TestServer.StartAsync();</c>
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    public WebApplication App { get; }
    public HttpClient Client { get; }
    public JobQueue Jobs { get; }
    public ModelRegistry Models { get; }
    public string DataDir { get; }
    public Uri BaseAddress { get; }
    private readonly bool _ownsData;

    private TestServer(WebApplication app, string dataDir, bool ownsData, string? apiKey)
    {
        App = app;
        DataDir = dataDir;
        _ownsData = ownsData;
        BaseAddress = new Uri(ServerApp.Addresses(app).First());
        Client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromMinutes(5) };
        if (apiKey is not null) Client.DefaultRequestHeaders.Authorization = new("Bearer", apiKey);
        Jobs = app.Services.GetRequiredService<JobQueue>();
        Models = app.Services.GetRequiredService<ModelRegistry>();
    }

    /// <summary>The embedded model's folder (models/emoji-base, found beside the test binaries or in the checkout).</summary>
    public static string EmbeddedModel => ModelOption.EmbeddedModelDir() ?? throw new InvalidOperationException("embedded model not found");

    public static async Task<TestServer> StartAsync(IReadOnlyList<ModelSpec>? models = null, string? dataDir = null, int maxQueue = 16,
        string? apiKey = null, string host = "127.0.0.1", JobLimits? limits = null, long maxBodyBytes = 32L << 20,
        long? modelMemoryBudget = null, Func<string, PipelineOptions, StableDiffusionPipeline>? loader = null, TimeSpan? shutdownGrace = null,
        IReadOnlyList<SelfCascade.Server.Extras.UpsamplerSpec>? upsamplers = null, IReadOnlyList<SelfCascade.Server.Extras.LoraSpec>? loras = null)
    {
        TorchSetup.Ensure();
        bool owns = dataDir is null;
        dataDir ??= Directory.CreateTempSubdirectory("sc-server-").FullName;
        var app = ServerApp.Build(new ServerOptions
        {
            Models = models ?? [new ModelSpec(ModelOption.EmbeddedName, EmbeddedModel)],
            Host = host, Port = 0, ApiKey = apiKey, DataDir = dataDir, MaxQueue = maxQueue, Limits = limits ?? new JobLimits(),
            MaxBodyBytes = maxBodyBytes, ModelMemoryBudgetBytes = modelMemoryBudget, Loader = loader,
            ShutdownGrace = shutdownGrace ?? TimeSpan.Zero, Upsamplers = upsamplers ?? [], Loras = loras ?? [],
        });
        await app.StartAsync();
        return new TestServer(app, dataDir, owns, apiKey);
    }

    /// <summary>POSTs JSON to /api/jobs (or another path) and returns the accepted job's id; fails on any other status.</summary>
    public async Task<string> SubmitAsync(object body, string path = "/api/jobs")
    {
        using var response = await Client.PostAsJsonAsync(path, body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == System.Net.HttpStatusCode.Accepted, $"{(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.GetProperty("id").GetString()!;
    }

    public async Task<JsonElement> GetJobAsync(string id) =>
        JsonDocument.Parse(await Client.GetStringAsync($"/api/jobs/{id}")).RootElement.Clone();

    /// <summary>Polls until the job is final; returns its record.</summary>
    public async Task<JsonElement> WaitAsync(string id, TimeSpan? timeout = null)
    {
        var end = DateTime.UtcNow + (timeout ?? TimeSpan.FromMinutes(3));
        while (true)
        {
            var job = await GetJobAsync(id);
            var status = job.GetProperty("status").GetString();
            if (status is "done" or "failed" or "cancelled" or "interrupted") return job;
            Assert.True(DateTime.UtcNow < end, $"job {id} still {status}");
            await Task.Delay(50);
        }
    }

    /// <summary>Reads a job's SSE stream to its end: (event type, data JSON) in order.</summary>
    public async Task<List<(string Type, JsonElement Data)>> ReadEventsAsync(string id, CancellationToken ct = default)
    {
        using var response = await Client.GetAsync($"/api/jobs/{id}/events", HttpCompletionOption.ResponseHeadersRead, ct);
        response.EnsureSuccessStatusCode();
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
        var list = new List<(string, JsonElement)>();
        string? type = null;
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal)) type = line[7..];
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
                list.Add((type ?? "message", JsonDocument.Parse(line[6..]).RootElement.Clone()));
        }
        return list;
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
        if (_ownsData)
            try { Directory.Delete(DataDir, true); }
            catch (IOException) { }
    }
}
