using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using SelfCascade.Server;
using SelfCascade.Server.Models;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Server.Web;

/// <summary>The real server (<see cref="ServerApp"/>) on a free loopback port with the embedded emoji model and a temp data dir.</summary>
public sealed class PageServerFixture : IAsyncLifetime
{
    private WebApplication? _app;
    public string BaseUrl { get; private set; } = "";
    public string DataDir { get; } = Directory.CreateTempSubdirectory("selfcascade-page-").FullName;
    public string ModelDir { get; } = SelfCascade.Cli.ModelOption.EmbeddedModelDir()
        ?? throw new InvalidOperationException("models/emoji-base not found");
    public HttpClient Http { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        TorchSetup.Ensure();
        _app = ServerApp.Build(new ServerOptions { Models = [new ModelSpec("emoji-base", ModelDir)], Port = 0, DataDir = DataDir });
        await _app.StartAsync();
        BaseUrl = ServerApp.Addresses(_app)[0].TrimEnd('/');
        Http = new HttpClient { BaseAddress = new Uri(BaseUrl), Timeout = TimeSpan.FromSeconds(60) };
    }

    /// <summary>Polls a job until it is done (fails on any other final state).</summary>
    public async Task WaitDone(string id)
    {
        var until = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < until)
        {
            var job = await Http.GetFromJsonAsync<JsonElement>($"/api/jobs/{id}");
            var status = job.GetProperty("status").GetString();
            if (status == "done") return;
            if (status is "failed" or "cancelled" or "interrupted") throw new InvalidOperationException($"job {id} ended {status}: {job}");
            await Task.Delay(100);
        }
        throw new TimeoutException($"job {id} did not finish within 60 s");
    }

    public async Task DisposeAsync()
    {
        Http?.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        try { Directory.Delete(DataDir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
