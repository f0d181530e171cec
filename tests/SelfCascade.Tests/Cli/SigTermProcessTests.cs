using System.Diagnostics;
using System.Globalization;
using SelfCascade.Tests.Support;
using SelfCascade.Tests.Training;

namespace SelfCascade.Tests.Cli;

/// <summary>
/// The real CLI process stopped by SIGTERM (what `kill`, systemd and container stops send; a script's background job
/// never receives Ctrl+C's SIGINT): a training run writes a checkpoint of the step it reached, exits with the
/// cancelled code, and `--resume` continues from that step.
/// </summary>
public sealed class SigTermProcessTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-sigterm-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task SigTermCheckpointsTheReachedStepAndResumeContinuesFromIt()
    {
        if (!OperatingSystem.IsLinux()) return;
        var data = Path.Combine(_dir, "data");
        SyntheticImages.Make(data, 16);
        var outDir = Path.Combine(_dir, "run");
        string[] common = ["train-base", "--data", data, "--out", outDir, "--preset", SyntheticImages.MicroPreset(_dir),
            "--size", "16", "--batch", "2", "--preview-every", "0", "--checkpoint-every", "100000", "--threads", "1",
            "--tokenizer", Fixtures.ParityPath("tokenizer", "pad_eos")];

        using (var p = Start([.. common, "--steps", "100000"]))
        {
            var err = p.StandardError.ReadToEndAsync();
            _ = p.StandardOutput.ReadToEndAsync();
            var lossCsv = Path.Combine(outDir, "loss.csv");
            var end = DateTime.UtcNow + TimeSpan.FromMinutes(2);
            while (StepsLogged(lossCsv) < 3)
            {
                if (p.HasExited) Assert.Fail("train-base ended early: " + await err);
                if (DateTime.UtcNow >= end)
                {
                    p.Kill(entireProcessTree: true);
                    Assert.Fail($"no 3 training steps within 2 minutes; {outDir}: " +
                        string.Join(", ", Directory.Exists(outDir) ? Directory.GetFileSystemEntries(outDir) : []) + "; " + await err);
                }
                Thread.Sleep(50);
            }
            using (var kill = Process.Start("kill", ["-TERM", p.Id.ToString(CultureInfo.InvariantCulture)]))
                await kill.WaitForExitAsync();
            Assert.True(p.WaitForExit(TimeSpan.FromSeconds(60)), "still running a minute after SIGTERM");
            var stderr = await err;
            Assert.True(p.ExitCode == 130, $"exit {p.ExitCode}: {stderr}");
            Assert.Contains("error: cancelled", stderr);
        }
        // The checkpoint holds the step the run reached (>= the 3 logged; no periodic checkpoint was due).
        var checkpoints = Directory.GetDirectories(Path.Combine(outDir, "checkpoints")).Select(Path.GetFileName).ToList();
        var step = Assert.Single(checkpoints)!;
        int reached = int.Parse(step["step-".Length..], CultureInfo.InvariantCulture);
        Assert.True(reached >= 3, $"checkpoint {step}");

        using (var p = Start([.. common, "--steps", (reached + 1).ToString(CultureInfo.InvariantCulture), "--resume"]))
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            var err = p.StandardError.ReadToEndAsync();
            Assert.True(p.WaitForExit(TimeSpan.FromMinutes(2)), "resume did not finish");
            Assert.True(p.ExitCode == 0, await err);
            Assert.Contains($"trained steps {reached + 1}..{reached + 1}", await stdout);
        }
    }

    /// <summary>Steps written to loss.csv so far (0 while it does not exist yet).</summary>
    private static int StepsLogged(string lossCsv)
    {
        try
        {
            using var s = new FileStream(lossCsv, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var r = new StreamReader(s);
            return r.ReadToEnd().Split('\n').Count(l => l.Length > 0 && char.IsDigit(l[0]));
        }
        catch (IOException) { return 0; } // not written yet
    }

    /// <summary>`dotnet SelfCascade.Cli.dll ARGS` as a child process with passive OpenMP waiting.</summary>
    private static Process Start(string[] args)
    {
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "SelfCascade.Cli.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["OMP_WAIT_POLICY"] = "PASSIVE";
        return Process.Start(psi)!;
    }
}
