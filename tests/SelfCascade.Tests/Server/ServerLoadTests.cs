using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Xunit.Abstractions;

namespace SelfCascade.Tests.Server;

/// <summary>
/// Load on loopback (docs/BENCHMARKS.md "Server load"): 200 small jobs from 20 concurrent clients, each following its
/// job over SSE, with random cancellations and malformed requests mixed in. Every accepted job must end done,
/// cancelled or failed with a reason, none lost or duplicated, no 5xx, and memory bounded. Prints the table.
/// </summary>
public sealed class ServerLoadTests(ITestOutputHelper output)
{
    private const int Jobs = 200, Clients = 20, MaxQueue = 16;

    [Fact]
    [Trait("Category", "Slow")]
    public async Task TwoHundredJobsFromTwentyClientsWithCancelsAndMalformedRequests()
    {
        await using var s = await TestServer.StartAsync(maxQueue: MaxQueue);
        // Load the model first so the first client's latency is not the load time.
        await s.WaitAsync(await s.SubmitAsync(new { prompt = "warm up", steps = 2, preview_every = 0 }));
        var self = Process.GetCurrentProcess();
        self.Refresh();
        long baseline = self.WorkingSet64, peak = baseline;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                self.Refresh();
                peak = Math.Max(peak, self.WorkingSet64);
                try { await Task.Delay(100, sampling.Token); } catch (OperationCanceledException) { }
            }
        });

        int next = -1, rejects = 0, malformed = 0, fiveHundreds = 0, cancelRequests = 0;
        var accepted = new ConcurrentBag<string>();
        var latencies = new ConcurrentBag<double>();
        var finals = new ConcurrentDictionary<string, (string Status, string? Error)>();
        var clock = Stopwatch.StartNew();
        var clients = Enumerable.Range(0, Clients).Select(c => Task.Run(async () =>
        {
            var rng = new Random(1000 + c);
            using var http = new HttpClient { BaseAddress = s.BaseAddress, Timeout = TimeSpan.FromMinutes(5) };
            while (true)
            {
                int i = Interlocked.Increment(ref next);
                if (i >= Jobs) return;
                if (rng.NextDouble() < 0.1)
                {
                    // A malformed request: must be a 4xx, never a 5xx.
                    var bad = rng.Next(4) switch
                    {
                        0 => "{\"prompt\": 5}",
                        1 => "{\"prompt\": \"x\", \"size\": \"99999x99999\"}",
                        2 => "{\"prompt\": \"x\", \"model\": \"nope\"}",
                        _ => "{not json",
                    };
                    using var r = await http.PostAsync("/api/jobs", new StringContent(bad, Encoding.UTF8, "application/json"));
                    Interlocked.Increment(ref malformed);
                    if ((int)r.StatusCode >= 500) Interlocked.Increment(ref fiveHundreds);
                    Assert.True((int)r.StatusCode is >= 400 and < 500, $"malformed request got {(int)r.StatusCode}");
                }
                var submitted = Stopwatch.StartNew();
                string id;
                while (true)
                {
                    using var r = await http.PostAsJsonAsync("/api/jobs", new { prompt = $"emoji {i}", seed = i, steps = 2, preview_every = 0 });
                    if ((int)r.StatusCode >= 500) Interlocked.Increment(ref fiveHundreds);
                    if (r.StatusCode == HttpStatusCode.TooManyRequests)
                    {
                        Interlocked.Increment(ref rejects);
                        var wait = r.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(1);
                        await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(wait.TotalMilliseconds, 1000)));
                        continue;
                    }
                    Assert.Equal(HttpStatusCode.Accepted, r.StatusCode);
                    id = JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;
                    break;
                }
                accepted.Add(id);
                Task? cancel = null;
                if (rng.NextDouble() < 0.15)
                {
                    Interlocked.Increment(ref cancelRequests);
                    int delay = rng.Next(0, 300);
                    cancel = Task.Run(async () =>
                    {
                        await Task.Delay(delay);
                        using var r = await http.PostAsync($"/api/jobs/{id}/cancel", null);
                        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
                    });
                }
                // Follow the job over SSE to its final event.
                using (var response = await http.GetAsync($"/api/jobs/{id}/events", HttpCompletionOption.ResponseHeadersRead))
                {
                    using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
                    string? type = null;
                    JsonElement last = default;
                    while (await reader.ReadLineAsync() is { } line)
                    {
                        if (line.StartsWith("event: ", StringComparison.Ordinal)) type = line[7..];
                        else if (line.StartsWith("data: ", StringComparison.Ordinal)) last = JsonDocument.Parse(line[6..]).RootElement.Clone();
                    }
                    Assert.True(type is "done" or "cancelled" or "failed", $"job {id} stream ended with {type}");
                    var job = last.GetProperty("job");
                    Assert.True(finals.TryAdd(id, (job.GetProperty("status").GetString()!, job.GetProperty("error").GetString())), $"job {id} finished twice");
                }
                latencies.Add(submitted.Elapsed.TotalSeconds);
                if (cancel is not null) await cancel;
            }
        })).ToList();
        await Task.WhenAll(clients).WaitAsync(TimeSpan.FromMinutes(15));
        double seconds = clock.Elapsed.TotalSeconds;
        sampling.Cancel();
        await sampler;

        // None lost or duplicated: the accepted ids are distinct, each has exactly one final state, and the store
        // holds exactly them (plus the warm-up job).
        var ids = accepted.ToList();
        Assert.Equal(Jobs, ids.Count);
        Assert.Equal(Jobs, ids.Distinct().Count());
        Assert.Equal(ids.Order(), finals.Keys.Order());
        var stored = JsonDocument.Parse(await s.Client.GetStringAsync("/api/jobs?limit=1000")).RootElement.GetProperty("jobs")
            .EnumerateArray().Select(j => (Id: j.GetProperty("id").GetString()!, Status: j.GetProperty("status").GetString()!, Images: j.GetProperty("images").GetArrayLength()))
            .ToList();
        Assert.Equal(Jobs + 1, stored.Count);
        Assert.Equal(Jobs + 1, stored.Select(j => j.Id).Distinct().Count());
        foreach (var id in ids)
        {
            var (status, error) = finals[id];
            var row = stored.Single(j => j.Id == id);
            Assert.Equal(status, row.Status);
            if (status == "done") Assert.Equal(1, row.Images);
            else Assert.False(string.IsNullOrWhiteSpace(error), $"job {id} {status} without a reason");
            if (status == "done") Assert.NotNull(s.Jobs.Outputs.Find(id, "image-0.png"));
        }
        Assert.Equal(0, fiveHundreds);
        Assert.Equal(0, s.Jobs.QueuedCount);
        long growth = peak - baseline;
        Assert.True(growth < 2L << 30, $"working set grew by {growth >> 20} MiB");

        var lat = latencies.Order().ToList();
        double P(double q) => lat[Math.Min(lat.Count - 1, (int)Math.Ceiling(q * lat.Count) - 1)];
        var counts = finals.Values.GroupBy(v => v.Status).ToDictionary(g => g.Key, g => g.Count());
        var inv = CultureInfo.InvariantCulture;
        var table = new StringBuilder()
            .AppendLine("| jobs | clients | max queue | done | cancelled | failed | 429 rejects | malformed (4xx) | 5xx | wall s | jobs/s | p50 s | p99 s | peak working set MiB (growth) |")
            .AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
            .AppendLine(string.Create(inv, $"| {Jobs} | {Clients} | {MaxQueue} | {counts.GetValueOrDefault("done")} | {counts.GetValueOrDefault("cancelled")} | {counts.GetValueOrDefault("failed")} | {rejects} | {malformed} | {fiveHundreds} | {seconds:F1} | {Jobs / seconds:F2} | {P(0.5):F2} | {P(0.99):F2} | {peak >> 20} (+{growth >> 20}) |"))
            .AppendLine(string.Create(inv, $"cancel requests: {cancelRequests}"));
        output.WriteLine(table.ToString());
        File.WriteAllText(Path.Combine(Path.GetTempPath(), "selfcascade-server-load.md"), table.ToString());
    }
}
