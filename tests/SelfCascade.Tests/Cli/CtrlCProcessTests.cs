using System.Diagnostics;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Cli;

/// <summary>
/// Ctrl+C end to end: a real `selfcascade generate` process gets SIGINT (what a terminal sends on Ctrl+C); Program's
/// CancelKeyPress handler must turn it into a cancel that stops the denoising loop, exit code 130 and no file.
/// </summary>
public sealed class CtrlCProcessTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-sigint-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task SigIntStopsTheRealProcessWith130AndNoFile()
    {
        if (!OperatingSystem.IsLinux()) return;
        // A background job of a non-interactive shell (`cmd &` in a script) starts with SIGINT ignored, and children
        // inherit that, so the CLI would never see the signal: say so instead of timing out.
        var ignored = File.ReadLines("/proc/self/status").First(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
        Assert.True((Convert.ToUInt64(ignored["SigIgn:".Length..].Trim(), 16) & (1UL << 1)) == 0,
            "SIGINT is ignored in the test process (started as a background job of a non-interactive shell?); run the tests in the foreground");
        var model = TinyModelFolders.BuildSd(Path.Combine(_dir, "model"));
        var output = Path.Combine(_dir, "never.png");
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        // 500 steps at 128x128 take minutes: the run cannot end with "cancelled" unless the signal stopped it. (Not
        // 1000: DDIM with steps_offset 1 and as many steps as training timesteps indexes past its table, as diffusers'.)
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "SelfCascade.Cli.dll"), "generate", "--model", model,
                     "--prompt", "a red circle", "--size", "128x128", "--method", "direct", "--steps", "500", "--out", output })
            psi.ArgumentList.Add(a);
        psi.Environment["OMP_WAIT_POLICY"] = "PASSIVE";
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        try
        {
            // libtorch is loaded only after Main has installed its Ctrl+C handler, so once it is mapped SIGINT
            // reaches the handler (before that, the default action would just kill the process).
            var wait = Stopwatch.StartNew();
            while (!MapsLibTorch(process.Id))
            {
                Assert.False(process.HasExited, "the CLI ended before loading libtorch");
                Assert.True(wait.Elapsed < TimeSpan.FromMinutes(2), "libtorch was not loaded within two minutes");
                await Task.Delay(50);
            }
            using (var kill = Process.Start("kill", ["-INT", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                kill.WaitForExit();
                Assert.Equal(0, kill.ExitCode);
            }
            Assert.True(process.WaitForExit(TimeSpan.FromSeconds(60)), "still running a minute after SIGINT");
            await process.WaitForExitAsync();
            var err = (await stderr).Trim();
            Assert.True(process.ExitCode == 130, $"exit code {process.ExitCode}: {err}");
            // The signal is acknowledged at once (a second one would end the process: StopSignals), then the command stops.
            Assert.Equal("stopping (signal again to stop at once)\nerror: cancelled", err.ReplaceLineEndings("\n"));
            Assert.Equal("", await stdout);
            Assert.False(File.Exists(output));
            Assert.Empty(Directory.GetFiles(_dir, "never.png*"));
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
    }

    private static bool MapsLibTorch(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/maps").Contains("libtorch_cpu", StringComparison.Ordinal); }
        catch (IOException) { return false; }
    }
}
