using System.Diagnostics;
using SelfCascade.Imaging;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Benchmarks;

/// <summary>
/// scripts/publish-gpu.sh end to end (minutes: a full self-contained publish, hence Slow): the bundle is under
/// 64 MiB, carries no libtorch, and starts: with no SELFCASCADE_LIBTORCH, `doctor` still prints and explains; with
/// SELFCASCADE_LIBTORCH naming a libtorch folder (here the CPU one the tests carry, the only one this machine has),
/// the single-file program loads it the way it loads a CUDA one and generates an image.
/// </summary>
public sealed class GpuBundleTests : IDisposable
{
    private readonly string _out = Directory.CreateTempSubdirectory("sc-gpu-bundle-").FullName;
    public void Dispose() => Directory.Delete(_out, true);

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "scripts", "publish-gpu.sh"))) return d.FullName;
        throw new DirectoryNotFoundException("scripts/publish-gpu.sh not found above the test binaries");
    }

    private static (int Code, string Out, string Err) Run(string file, string args, Action<ProcessStartInfo>? env = null, int timeoutMs = 900_000)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        env?.Invoke(psi);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutMs)) { p.Kill(true); throw new TimeoutException($"{file} {args} did not finish"); }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    [Trait("Category", "Slow")]
    public void PublishedBundleIsSmallHasNoLibTorchAndItsDoctorExplains()
    {
        var (code, stdout, err) = Run("bash", $"\"{Path.Combine(RepoRoot(), "scripts", "publish-gpu.sh")}\" \"{_out}\"");
        Assert.True(code == 0, stdout + err);
        long bytes = Directory.EnumerateFiles(_out, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        Assert.True(bytes < 64L << 20, $"bundle is {bytes / (1 << 20)} MiB");
        Assert.True(File.Exists(Path.Combine(_out, "selfcascade")));
        Assert.True(File.Exists(Path.Combine(_out, "libLibTorchSharp.so")));
        Assert.Empty(Directory.EnumerateFiles(_out, "libtorch*", SearchOption.AllDirectories));
        Assert.Empty(Directory.EnumerateFiles(_out, "libc10*", SearchOption.AllDirectories));

        (code, stdout, err) = Run(Path.Combine(_out, "selfcascade"), "doctor --throughput-seconds 0",
            psi => { psi.Environment.Remove("SELFCASCADE_LIBTORCH"); psi.Environment["DOTNET_SYSTEM_GLOBALIZATION_INVARIANT"] = "1"; }, 120_000);
        Assert.True(code == 0, stdout + err);
        Assert.Contains("libtorch      NONE: no libtorch could be loaded", stdout);
        Assert.Contains("SELFCASCADE_LIBTORCH", stdout);
        Assert.Contains("cuda          NOT available [NotConfigured]", stdout);

        var libtorch = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native");
        void External(ProcessStartInfo psi)
        {
            psi.Environment["SELFCASCADE_LIBTORCH"] = libtorch;
            psi.Environment["DOTNET_SYSTEM_GLOBALIZATION_INVARIANT"] = "1";
            psi.Environment["OMP_WAIT_POLICY"] = "PASSIVE";
        }
        (code, stdout, err) = Run(Path.Combine(_out, "selfcascade"), "doctor --throughput-seconds 0.1", External, 120_000);
        Assert.True(code == 0, stdout + err);
        Assert.Contains("[CpuOnlyLibTorch]", stdout);
        Assert.Matches(@"matmul fp32 1024x1024: [0-9.]+ TFLOP/s", stdout);

        var model = TinyModelFolders.BuildSd(Path.Combine(_out, "..", Path.GetFileName(_out) + "-model"));
        try
        {
            var png = Path.Combine(_out, "bundle.png");
            (code, stdout, err) = Run(Path.Combine(_out, "selfcascade"),
                $"generate --model \"{model}\" --prompt \"a red circle\" --steps 2 --size 32x32 --out \"{png}\"", External, 300_000);
            Assert.True(code == 0, stdout + err);
            Assert.Equal(32, RgbImage.Load(png).Width);
        }
        finally { Directory.Delete(model, true); }
    }
}
