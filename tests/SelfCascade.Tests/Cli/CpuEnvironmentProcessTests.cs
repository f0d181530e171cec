using System.Diagnostics;
using System.Text.Json;
using SelfCascade.Runtime;

namespace SelfCascade.Tests.Cli;

/// <summary>
/// The CLI sets libtorch's OpenMP environment itself, natively, before libtorch loads (CpuEnvironment): a real child
/// process reports through `doctor --json` the wait policy libgomp saw and the thread count torch runs with.
/// </summary>
public sealed class CpuEnvironmentProcessTests
{
    private static JsonElement Doctor(Action<IDictionary<string, string?>> env, params string[] extra)
    {
        var cli = Path.Combine(AppContext.BaseDirectory, "SelfCascade.Cli.dll");
        var (code, stdout, stderr) = ToolPackageTests.Run(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet",
            [cli, "doctor", "--json", "--throughput-seconds", "0", .. extra], env: psi =>
            {
                foreach (var v in new[] { "OMP_WAIT_POLICY", "OMP_NUM_THREADS", CpuEnvironment.ThreadsVariable, "SELFCASCADE_LIBTORCH" })
                    psi.Environment.Remove(v);
                env(psi.Environment);
            }, timeoutSeconds: 180);
        Assert.True(code == 0, stdout + stderr);
        using var json = JsonDocument.Parse(stdout);
        return json.RootElement.Clone();
    }

    [Fact]
    public void UnsetEnvironmentGetsPassiveWaitingAndTheUsableCores()
    {
        var r = Doctor(_ => { });
        Assert.Equal("PASSIVE", r.GetProperty("omp_wait_policy").GetString());
        Assert.Equal(Environment.ProcessorCount, r.GetProperty("torch_threads").GetInt32());
        Assert.Equal("available cores", r.GetProperty("threads_source").GetString());
        Assert.Equal(JsonValueKind.Null, r.GetProperty("omp_advice").ValueKind);
    }

    [Fact]
    public void UserSettingsWinAndThreadsCanBeChosen()
    {
        // The user's wait policy is kept; SELFCASCADE_THREADS beats OMP_NUM_THREADS.
        var r = Doctor(e => { e["OMP_WAIT_POLICY"] = "ACTIVE"; e["OMP_NUM_THREADS"] = "2"; e[CpuEnvironment.ThreadsVariable] = "1"; });
        Assert.Equal("ACTIVE", r.GetProperty("omp_wait_policy").GetString());
        Assert.Equal(1, r.GetProperty("torch_threads").GetInt32());
        Assert.Equal(CpuEnvironment.ThreadsVariable, r.GetProperty("threads_source").GetString());
        Assert.NotEqual(JsonValueKind.Null, r.GetProperty("omp_advice").ValueKind);

        // --threads beats the environment.
        r = Doctor(e => e[CpuEnvironment.ThreadsVariable] = "2", "--threads", "1");
        Assert.Equal(1, r.GetProperty("torch_threads").GetInt32());
        Assert.Equal("--threads", r.GetProperty("threads_source").GetString());
        Assert.Equal("PASSIVE", r.GetProperty("omp_wait_policy").GetString());
    }

    [Fact]
    public void BadThreadCountsAreOneLineErrors()
    {
        var cli = Path.Combine(AppContext.BaseDirectory, "SelfCascade.Cli.dll");
        var (code, stdout, stderr) = ToolPackageTests.Run(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet",
            [cli, "doctor"], env: psi => psi.Environment[CpuEnvironment.ThreadsVariable] = "lots", timeoutSeconds: 120);
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Equal($"error: {CpuEnvironment.ThreadsVariable}='lots' must be a whole number from 1 to {CpuEnvironment.MaxThreads}", stderr.Trim());
        Assert.Throws<ArgumentException>(() => CpuEnvironment.ParseThreads("0", "--threads"));
        Assert.Equal(3, CpuEnvironment.ParseThreads(" 3 ", "--threads"));
    }
}
