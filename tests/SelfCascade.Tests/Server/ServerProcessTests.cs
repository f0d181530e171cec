using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using SelfCascade.Server.Jobs;
using SelfCascade.Server.Storage;

namespace SelfCascade.Tests.Server;

/// <summary>
/// The real `selfcascade serve` process: killed (SIGKILL) mid-job and started again, finished results are all there
/// and the interrupted job is marked; SIGTERM cancels the running and queued jobs, writes their state and exits 0.
/// </summary>
public sealed class ServerProcessTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-serve-proc-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task KilledMidJobThenRestartedKeepsFinishedResultsAndMarksTheInterruptedJob()
    {
        if (!OperatingSystem.IsLinux()) return;
        string done, running;
        byte[] png;
        using (var server = await ServeProcess.StartAsync(_dir))
        {
            done = await server.SubmitAsync(new { prompt = "a sun", seed = 4, steps = 2 });
            await server.WaitForAsync(done, "done");
            png = await server.Http.GetByteArrayAsync($"/api/jobs/{done}/images/0");
            running = await server.SubmitAsync(new { prompt = "a moon", size = "64x64", steps = 400, method = "direct", preview_every = 0 });
            await server.WaitForAsync(running, "running");
            await Task.Delay(300);
            server.Process.Kill();
            await server.Process.WaitForExitAsync();
        }
        using (var server = await ServeProcess.StartAsync(_dir))
        {
            Assert.Contains("1 interrupted job(s) from the last run marked", server.Banner);
            var d = await server.GetAsync(done);
            Assert.Equal("done", d.GetProperty("status").GetString());
            Assert.Equal(png, await server.Http.GetByteArrayAsync($"/api/jobs/{done}/images/0"));
            var r = await server.GetAsync(running);
            Assert.Equal("interrupted", r.GetProperty("status").GetString());
            Assert.Contains("stopped while this job was running", r.GetProperty("error").GetString());
        }
    }

    [Fact]
    public async Task SigTermCancelsRunningAndQueuedJobsWritesTheirStateAndExitsZero()
    {
        if (!OperatingSystem.IsLinux()) return;
        string running, queued;
        using (var server = await ServeProcess.StartAsync(_dir))
        {
            running = await server.SubmitAsync(new { prompt = "a moon", size = "64x64", steps = 400, method = "direct", preview_every = 0 });
            await server.WaitForAsync(running, "running");
            queued = await server.SubmitAsync(new { prompt = "a sun", steps = 2 });
            using (var kill = Process.Start("kill", ["-TERM", server.Process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
                await kill.WaitForExitAsync();
            Assert.True(server.Process.WaitForExit(TimeSpan.FromSeconds(60)), "still running a minute after SIGTERM");
            Assert.Equal(0, server.Process.ExitCode);
        }
        using var store = new JobStore(Path.Combine(_dir, "jobs.db"));
        var r = store.Get(running)!;
        Assert.Equal(JobStatus.Cancelled, r.Status);
        Assert.Equal("cancelled: the server shut down", r.Error);
        var q = store.Get(queued)!;
        Assert.Equal(JobStatus.Cancelled, q.Status);
        Assert.Contains("before it started", q.Error);
        Assert.Empty(store.List(100, 0, JobStatus.Running));
    }

    /// <summary>`dotnet SelfCascade.Cli.dll serve --port 0 --data DIR` as a child process, its URL read from stdout.</summary>
    private sealed class ServeProcess : IDisposable
    {
        public required Process Process { get; init; }
        public required HttpClient Http { get; init; }
        public required string Banner { get; init; }

        public static async Task<ServeProcess> StartAsync(string dataDir)
        {
            var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            };
            foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "SelfCascade.Cli.dll"), "serve", "--port", "0", "--data", dataDir, "--shutdown-grace", "0" })
                psi.ArgumentList.Add(a);
            psi.Environment["OMP_WAIT_POLICY"] = "PASSIVE";
            var process = Process.Start(psi)!;
            var err = process.StandardError.ReadToEndAsync();
            try
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
                var first = await process.StandardOutput.ReadLineAsync(cts.Token) ?? throw new InvalidOperationException("serve printed nothing: " + await err);
                var second = await process.StandardOutput.ReadLineAsync(cts.Token) ?? "";
                Assert.StartsWith("listening on http://127.0.0.1:", first);
                _ = process.StandardOutput.ReadToEndAsync();
                return new ServeProcess
                {
                    Process = process, Banner = first + "\n" + second,
                    Http = new HttpClient { BaseAddress = new Uri(first["listening on ".Length..]), Timeout = TimeSpan.FromMinutes(2) },
                };
            }
            catch
            {
                if (!process.HasExited) process.Kill(entireProcessTree: true);
                process.Dispose();
                throw;
            }
        }

        public async Task<string> SubmitAsync(object body)
        {
            using var r = await Http.PostAsJsonAsync("/api/jobs", body);
            var text = await r.Content.ReadAsStringAsync();
            Assert.True(r.StatusCode == System.Net.HttpStatusCode.Accepted, text);
            return JsonDocument.Parse(text).RootElement.GetProperty("id").GetString()!;
        }

        public async Task<JsonElement> GetAsync(string id) => JsonDocument.Parse(await Http.GetStringAsync($"/api/jobs/{id}")).RootElement.Clone();

        public async Task WaitForAsync(string id, string status)
        {
            var end = DateTime.UtcNow + TimeSpan.FromMinutes(2);
            while (true)
            {
                var s = (await GetAsync(id)).GetProperty("status").GetString();
                if (s == status) return;
                Assert.True(s is "queued" or "running" && DateTime.UtcNow < end, $"job {id} is {s}, waited for {status}");
                await Task.Delay(30);
            }
        }

        public void Dispose()
        {
            Http.Dispose();
            if (!Process.HasExited) Process.Kill(entireProcessTree: true);
            Process.Dispose();
        }
    }
}
