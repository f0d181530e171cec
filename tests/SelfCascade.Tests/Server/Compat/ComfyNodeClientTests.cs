using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using SelfCascade.Cascade;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Server.Compat;

/// <summary>
/// A published ComfyUI client that is not ours, @stable-canvas/comfyui-client 1.5.9 (pinned in
/// tests/comfyui-client/package-lock.json; `.ci/run` runs `npm ci` there), driven by tests/comfyui-client/run.mjs
/// under Node: txt2img + LatentUpscaleBy + KSampler through its Workflow.invoke (POST /prompt, /ws events, /queue,
/// /view). It must receive progress events and the image, and the image must be our cascade's. Fails (does not skip)
/// when node or the package is missing.
/// </summary>
public class ComfyNodeClientTests
{
    private static string ClientDir => Path.Combine(Fixtures.RepoRoot, "tests", "comfyui-client");

    private static string? FindNode() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(d => Path.Combine(d, "node")).FirstOrDefault(File.Exists);

    [Fact]
    public async Task StableCanvasClientRunsTheHiresWorkflowAndGetsTheImageWithProgress()
    {
        var node = FindNode();
        Assert.True(node is not null, "node is not installed (CI: .ci/run installs nodejs)");
        Assert.True(File.Exists(Path.Combine(ClientDir, "node_modules", "@stable-canvas", "comfyui-client", "package.json")),
            $"the client package is missing: run `npm ci` in {ClientDir} (.ci/run does)");

        await using var s = await TestServer.StartAsync();
        var psi = new ProcessStartInfo(node!)
        {
            WorkingDirectory = ClientDir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[] { "run.mjs", s.BaseAddress.ToString(), s.Models.DefaultName, "11" }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using (var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5)))
        {
            try { await p.WaitForExitAsync(cts.Token); }
            catch (OperationCanceledException) { p.Kill(true); throw; }
        }
        var lines = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        Assert.True(p.ExitCode == 0, $"node exited {p.ExitCode}: {await stdout}\n{await stderr}");

        Assert.Equal("selfcascade", lines.First(l => Event(l) == "system_stats").GetProperty("comfyui_version").GetString());
        Assert.Contains("euler", lines.First(l => Event(l) == "samplers").GetProperty("samplers").EnumerateArray().Select(e => e.GetString()));
        var progress = lines.Where(l => Event(l) == "progress").ToList();
        // The client numbers its nodes itself: the two KSamplers report 10 and 7 steps, in that order.
        var perNode = progress.GroupBy(l => l.GetProperty("node").GetString()).Select(g => (Node: g.Key, Steps: g.Count(),
            Max: g.Last().GetProperty("max").GetInt32())).ToList();
        Assert.Equal([(10, 10), (7, 7)], perNode.Select(n => (n.Steps, n.Max)));
        Assert.Contains(lines, l => Event(l) == "task_progress" && l.GetProperty("node").GetString() == perNode[1].Node); // the task's own hook
        Assert.Contains(lines, l => Event(l) == "execution_start");
        Assert.Contains(lines, l => Event(l) == "executed");

        var result = lines.Single(l => l.TryGetProperty("result", out _)).GetProperty("result");
        var image = Assert.Single(result.GetProperty("images").EnumerateArray());
        Assert.Equal(200, image.GetProperty("status").GetInt32());

        // The bytes the client fetched are the server's file of that prompt, and the image is our cascade's.
        var job = s.Jobs.List(5).Single(j => j.Origin == "comfyui");
        var path = s.Jobs.Outputs.Find(job.Id, Assert.Single(job.Images))!;
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path))), image.GetProperty("sha256").GetString());
        using var pipe = StableDiffusionPipeline.FromPretrained(TestServer.EmbeddedModel);
        using var expected = CascadeGenerator.Generate(pipe, new CascadeRequest
        {
            Request = new GenerationRequest("red heart") { NegativePrompt = "", Seed = 11, Steps = 10, Guidance = 3, Width = 64, Height = 64 },
            BaseSize = new PixelSize(32, 32), PivotStrength = 0.7,
            StageOverrides = new Dictionary<int, StageSettings> { [1] = new(10, 0.7) },
        });
        Assert.Equal(expected.Images[0].Pixels, RgbImage.Load(path).Pixels);
    }

    private static string? Event(JsonElement l) => l.TryGetProperty("event", out var e) ? e.GetString() : null;
}
