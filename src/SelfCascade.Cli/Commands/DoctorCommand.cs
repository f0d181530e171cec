using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using SelfCascade.Runtime;
using SelfCascade.Runtime.Doctor;

namespace SelfCascade.Cli.Commands;

/// <summary>`selfcascade doctor`: the runtime on one screen (or JSON), CUDA's absence explained in one line.</summary>
public static class DoctorCommand
{
    public static Command Create(CliConsole console)
    {
        var json = new Option<bool>("--json") { Description = "Print the report as JSON" };
        var seconds = new Option<double>("--throughput-seconds")
        {
            Description = "Wall-clock seconds of the matmul check per device (0 skips it)", DefaultValueFactory = _ => 2.0,
        };
        var cmd = new Command("doctor", "Show the runtime (OS, .NET, TorchSharp, libtorch, threads, CUDA and GPUs) and why CUDA is unavailable, if it is")
        {
            json, seconds,
        };
        cmd.SetAction(p =>
        {
            double s = p.GetValue(seconds);
            if (!(s >= 0) || s > 600) { console.Error.WriteLine($"error: --throughput-seconds {s} must be in [0, 600]"); return 1; }
            var libtorch = p.GetValue(CliApp.LibTorchOption);
            string? threadsSource = CliApp.CpuSettings?.ThreadsSource;
            if (console.Threads is not null)
            {
                // --threads applies once libtorch is chosen; a libtorch that cannot load is the report's business.
                try
                {
                    console.InitializeTorch(libtorch);
                    threadsSource = "--threads";
                }
                catch (ArgumentException e) { console.Error.WriteLine("error: " + e.Message); return 1; }
                catch (Exception e) when (e is DeviceUnavailableException or DllNotFoundException or TypeInitializationException) { }
            }
            var report = RuntimeDoctor.Run(new DoctorOptions
            {
                LibTorchDir = libtorch,
                ThroughputBudget = TimeSpan.FromSeconds(s),
                // What libgomp sees: the native environment (Program sets it before libtorch loads).
                Environment = CpuEnvironment.NativeGet,
            }) with { ThreadsSource = threadsSource };
            if (p.GetValue(json)) console.Out.WriteLine(JsonSerializer.Serialize(report, JsonOptions));
            else Print(report, console.Out);
            return 0;
        });
        return cmd;
    }

    public static readonly JsonSerializerOptions JsonOptions = new(CliConsole.Json)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // "->" and "+" stay readable
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    public static void Print(DoctorReport r, TextWriter w)
    {
        var inv = CultureInfo.InvariantCulture;
        w.WriteLine($"os            {r.Os} ({r.Architecture})");
        w.WriteLine($".net          {r.DotNet}");
        w.WriteLine($"torchsharp    {r.TorchSharpVersion}");
        if (r.TorchError is not null)
            w.WriteLine($"libtorch      NONE: {r.TorchError}");
        else
        {
            w.WriteLine($"libtorch      {r.LibTorchVersion}");
            w.WriteLine($"loaded from   {r.LibTorchLoadedFrom ?? "?"}");
            w.WriteLine($"threads       torch {r.TorchThreads} (interop {r.TorchInteropThreads}), {r.ProcessorCount} logical CPUs, OMP_NUM_THREADS={r.OmpNumThreads ?? "unset"}, OMP_WAIT_POLICY={r.OmpWaitPolicy ?? "unset"}{(r.ThreadsSource is null ? "" : $"; threads from {r.ThreadsSource}")}");
        }
        if (r.OmpAdvice is not null) w.WriteLine($"              note: {r.OmpAdvice}");
        w.WriteLine($"libtorch dir  {r.LibTorch.Folder ?? "(none named)"}: {r.LibTorch.State}");
        var driver = r.Driver.DriverLoaded
            ? $"libcuda.so.1 loaded, CUDA driver API {FormatCudaVersion(r.Driver.DriverVersion)}, {r.Driver.DeviceCount} device(s){(r.Driver.DeviceError is null ? "" : ": " + r.Driver.DeviceError)}"
            : $"not found ({r.Driver.DriverError})";
        w.WriteLine($"nvidia driver {driver}");
        w.WriteLine($"cuda          {(r.Cuda.Available ? "available" : "NOT available")} [{r.Cuda.Reason}]: {r.Cuda.Explanation}");
        if (r.Driver.RuntimeError is not null && r.Driver.DeviceCount > 0) w.WriteLine($"              note: {r.Driver.RuntimeError}");
        foreach (var gpu in r.Driver.Devices)
            if (!r.Cuda.Available)
                w.WriteLine($"gpu {gpu.Index}         {gpu.Name}, compute {gpu.ComputeCapability}, {Gib(gpu.TotalBytes)} total (not usable by this process)");
        foreach (var d in r.Devices)
        {
            var parts = new List<string> { d.Name };
            if (d.ComputeCapability is not null) parts.Add("compute " + d.ComputeCapability);
            if (d.TotalBytes is long t) parts.Add($"{Gib(t)} total" + (d.FreeBytes is long f ? $", {Gib(f)} free" : ", free unknown"));
            parts.Add($"fp16 {(d.Fp16 ? "yes" : "no")}, bf16 {(d.Bf16 ? "yes" : "no")}");
            if (d.Matmul is { } m)
                parts.Add(string.Format(inv, "matmul {0} {1}x{1}: {2:0.###} TFLOP/s ({3} in {4:0.0} s)", m.DType, m.Size, m.Tflops, m.Iterations, m.Seconds));
            if (d.Error is not null) parts.Add("error: " + d.Error);
            w.WriteLine($"{d.Device,-13} {string.Join("; ", parts)}");
        }
    }

    private static string Gib(long bytes) => (bytes / (double)(1L << 30)).ToString("0.0", CultureInfo.InvariantCulture) + " GiB";

    private static string FormatCudaVersion(int? v) => v is int x && x > 0 ? $"{x / 1000}.{x % 1000 / 10}" : "?";
}
