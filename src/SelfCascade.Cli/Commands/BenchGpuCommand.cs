using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using SelfCascade.Benchmarks;
using SelfCascade.Runtime;
using SelfCascade.Runtime.Doctor;
using TorchSharp;

namespace SelfCascade.Cli.Commands;

/// <summary>`selfcascade bench-gpu`: the one-call GPU benchmark beside diffusers' numbers; on a CPU, a seconds-long smoke run.</summary>
public static class BenchGpuCommand
{
    public static Command Create(CliConsole console)
    {
        var device = new Option<string?>("--device") { Description = "cuda, cuda:N or cpu (default: cuda when available, else cpu)" };
        var smoke = new Option<bool?>("--smoke") { Description = "Tiny networks at 1/16 of each size, few steps (default: on for cpu, off for cuda)" };
        var repeats = new Option<int>("--repeats") { Description = "Timed runs per row after one warm-up (median reported; 4096 px rows run at most 3)", DefaultValueFactory = _ => 5 };
        var reference = new Option<string?>("--reference") { Description = "Folder of diffusers' measurements (shared/bench; default: bench-reference beside the program, or shared/bench above it)" };
        var json = new Option<bool>("--json") { Description = "Print the rows as JSON after the table" };
        var cmd = new Command("bench-gpu", "Time full-size SD 2.1-base and SDXL-base shaped networks (random weights, fp16 on CUDA) and the cascade end to end, beside diffusers' measurements")
        {
            device, smoke, repeats, reference, json,
        };
        cmd.SetAction(p => console.Guard(p.GetValue(CliApp.LibTorchOption), () =>
        {
            var deviceName = p.GetValue(device) ?? (torch.cuda.is_available() ? "cuda" : "cpu");
            var dev = TorchRuntime.ResolveDevice(deviceName);
            bool isCuda = dev.type == DeviceType.CUDA;
            int n = p.GetValue(repeats);
            if (n < 1 || n > 100) throw new ArgumentException($"--repeats {n} must be in [1, 100]");
            var options = new GpuBenchOptions
            {
                Device = dev,
                DType = isCuda ? torch.ScalarType.Float16 : torch.ScalarType.Float32,
                Smoke = p.GetValue(smoke) ?? !isCuda,
                Repeats = n,
                ReferenceDir = p.GetValue(reference) ?? DefaultReferenceDir(),
                DeviceMemoryUsed = isCuda ? new CudaProbe().DeviceMemoryUsed(TorchRuntime.LibTorchDirectory, dev.index < 0 ? 0 : dev.index) : null,
            };
            var rows = GpuBenchmark.Run(options, console.Progress<string>(s => (0, s)));
            PrintTable(rows, options, console.Out);
            if (p.GetValue(json)) console.Out.WriteLine(JsonSerializer.Serialize(rows, DoctorCommand.JsonOptions));
            return 0;
        }));
        return cmd;
    }

    /// <summary>bench-reference/ beside the program (the GPU bundle), else shared/bench in a folder above it (a checkout).</summary>
    public static string? DefaultReferenceDir()
    {
        var beside = Path.Combine(AppContext.BaseDirectory, "bench-reference");
        if (Directory.Exists(beside)) return beside;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            foreach (var c in new[] { Path.Combine(dir.FullName, "shared", "bench"), Path.Combine(dir.FullName, "..", "shared", "bench") })
                if (Directory.Exists(c)) return Path.GetFullPath(c);
        return null;
    }

    public static void PrintTable(IReadOnlyList<GpuBenchRow> rows, GpuBenchOptions o, TextWriter w)
    {
        var inv = CultureInfo.InvariantCulture;
        w.WriteLine($"bench-gpu on {o.Device} ({TorchRuntime.DTypeName(o.DType)}){(o.Smoke ? ": SMOKE RUN (tiny networks at 1/16 of each size; times are not comparable, the ratios only check the plumbing)" : "")}");
        w.WriteLine($"reference: {(o.ReferenceDir is null ? "none found" : o.ReferenceDir)} (diffusers on PyTorch 2.11 eager fp16, H200)");
        w.WriteLine("| what | model | px | ours ms | diffusers ms | ours/diffusers | ours peak GiB | diffusers peak GiB | note |");
        w.WriteLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var r in rows)
            w.WriteLine(string.Format(inv, "| {0} | {1} | {2} | {3:0.0} | {4} | {5} | {6} | {7} | {8} |", r.Kind, r.Model, r.Px, r.OursMs,
                r.ReferenceMs is double m ? m.ToString("0.0", inv) : "-", r.Ratio is double q ? q.ToString("0.00", inv) : "-",
                r.OursPeakGiB is double g ? g.ToString("0.00", inv) : "-", r.ReferencePeakGiB is double h ? h.ToString("0.00", inv) : "-", r.Note));
    }
}
