using System.Reflection;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Runtime.Doctor;

/// <summary>One device's line in the report: identity, memory, half-precision support, matmul throughput.</summary>
public sealed record DeviceReport(string Device, string Name)
{
    public string? ComputeCapability { get; init; }
    public long? TotalBytes { get; init; }
    public long? FreeBytes { get; init; }
    public bool Fp16 { get; init; }
    public bool Bf16 { get; init; }
    public ThroughputResult? Matmul { get; init; }
    public string? Error { get; init; }
}

/// <summary>Everything `selfcascade doctor` shows: what a user pastes into a bug report.</summary>
public sealed record DoctorReport
{
    public required string Os { get; init; }
    public required string DotNet { get; init; }
    public required string Architecture { get; init; }
    public required string TorchSharpVersion { get; init; }
    public string? LibTorchVersion { get; init; }
    /// <summary>The folder the process's libtorch_cpu.so was loaded from.</summary>
    public string? LibTorchLoadedFrom { get; init; }
    public int ProcessorCount { get; init; }
    public int? TorchThreads { get; init; }
    public int? TorchInteropThreads { get; init; }
    public string? OmpNumThreads { get; init; }
    public string? OmpWaitPolicy { get; init; }
    /// <summary>Where the thread count came from (the CLI fills it: --threads, SELFCASCADE_THREADS, OMP_NUM_THREADS or the usable cores).</summary>
    public string? ThreadsSource { get; init; }
    /// <summary>Advice about the OpenMP settings, or null when they are fine.</summary>
    public string? OmpAdvice { get; init; }
    /// <summary>Why no libtorch at all could be used (the other torch fields are then null).</summary>
    public string? TorchError { get; init; }
    public required LibTorchFolderReport LibTorch { get; init; }
    public required CudaProbeResult Driver { get; init; }
    public required CudaStatus Cuda { get; init; }
    public IReadOnlyList<DeviceReport> Devices { get; init; } = [];
}

/// <summary>The doctor's seams: where libtorch comes from, how GPUs are probed, how long throughput runs.</summary>
public sealed record DoctorOptions
{
    /// <summary>The libtorch folder (--libtorch); null: SELFCASCADE_LIBTORCH.</summary>
    public string? LibTorchDir { get; init; }
    /// <summary>Loads the folder; default <see cref="TorchRuntime.Load"/> (the process's one libtorch).</summary>
    public Func<string?, LibTorchFolderReport>? LoadLibTorch { get; init; }
    public ICudaProbe? CudaProbe { get; init; }
    /// <summary>libtorch's own CUDA check; default torch.cuda.is_available().</summary>
    public Func<bool>? TorchSeesCuda { get; init; }
    /// <summary>Wall-clock budget of each device's matmul check; zero skips it.</summary>
    public TimeSpan ThroughputBudget { get; init; } = TimeSpan.FromSeconds(2);
    public int CpuMatmulSize { get; init; } = 1024;
    public int CudaMatmulSize { get; init; } = 8192;
    /// <summary>Environment lookup (tests pin it).</summary>
    public Func<string, string?> Environment { get; init; } = System.Environment.GetEnvironmentVariable;
}

/// <summary>
/// Gathers the report. Never throws for a missing or broken CUDA setup: every way CUDA can be missing becomes a
/// <see cref="CudaUnavailableReason"/> with one line of explanation; a process with no usable libtorch at all
/// (a GPU bundle run without SELFCASCADE_LIBTORCH) still reports the system and says why.
/// </summary>
public static class RuntimeDoctor
{
    public static DoctorReport Run(DoctorOptions? options = null)
    {
        options ??= new DoctorOptions();
        var dir = options.LibTorchDir ?? options.Environment(TorchRuntime.LibTorchEnvironmentVariable);
        if (string.IsNullOrWhiteSpace(dir)) dir = null;
        LibTorchFolderReport folder;
        try { folder = (options.LoadLibTorch ?? TorchRuntime.Load)(dir); }
        catch (Exception e) { folder = new(dir, LibTorchFolderState.LibraryFailed, $"loading libtorch from '{dir}' failed: {e.Message}") { LoaderMessage = e.Message }; }

        string? ompThreads = options.Environment("OMP_NUM_THREADS"), ompWait = options.Environment("OMP_WAIT_POLICY");
        var report = new DoctorReport
        {
            Os = RuntimeInformation.OSDescription,
            DotNet = RuntimeInformation.FrameworkDescription,
            Architecture = RuntimeInformation.ProcessArchitecture.ToString(),
            TorchSharpVersion = typeof(torch).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
                ?? typeof(torch).Assembly.GetName().Version?.ToString() ?? "?",
            ProcessorCount = System.Environment.ProcessorCount,
            OmpNumThreads = ompThreads,
            OmpWaitPolicy = ompWait,
            OmpAdvice = string.Equals(ompWait, "PASSIVE", StringComparison.OrdinalIgnoreCase) ? null
                : "OMP_WAIT_POLICY is not PASSIVE: libtorch's OpenMP threads spin while idle, which slows everything on a shared or busy CPU",
            LibTorch = folder,
            Driver = new CudaProbeResult(),
            Cuda = new CudaStatus(false, CudaUnavailableReason.NotConfigured, folder.Explanation),
        };

        // Torch itself: with no libtorch at all (a GPU bundle without SELFCASCADE_LIBTORCH) the first call throws.
        try
        {
            report = report with
            {
                TorchThreads = torch.get_num_threads(),
                TorchInteropThreads = torch.get_num_interop_threads(),
                LibTorchLoadedFrom = LoadedLibTorchFolder(),
            };
            report = report with { LibTorchVersion = LibTorchVersion(folder.IsLoaded ? folder.Folder : null, report.LibTorchLoadedFrom) };
        }
        catch (Exception e)
        {
            report = report with { TorchError = NoLibTorchMessage(folder, e) };
        }

        var probe = (options.CudaProbe ?? new CudaProbe()).Probe(folder.IsLoaded ? folder.Folder : null);
        var status = report.TorchError is not null && folder.IsLoaded
            ? new CudaStatus(false, CudaUnavailableReason.LibraryFailed, report.TorchError)
            : CudaDiagnosis.Diagnose(folder, probe, options.TorchSeesCuda ?? (() => torch.cuda.is_available()));
        report = report with { Driver = probe, Cuda = status };
        if (report.TorchError is not null) return report;

        var devices = new List<DeviceReport> { CpuDevice(options) };
        if (status.Available)
        {
            int count;
            try { count = torch.cuda.device_count(); } catch (Exception) { count = 0; }
            for (int i = 0; i < count; i++) devices.Add(CudaDevice(i, probe.Devices.FirstOrDefault(g => g.Index == i), options));
        }
        return report with { Devices = devices };
    }

    private static string NoLibTorchMessage(LibTorchFolderReport folder, Exception e)
    {
        var inner = e;
        while (inner.InnerException is not null) inner = inner.InnerException;
        var why = string.Join(" ", inner.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        return folder.State == LibTorchFolderState.NotConfigured
            ? $"no libtorch could be loaded: this build bundles none, and {TorchRuntime.LibTorchEnvironmentVariable}/--libtorch name no folder; set it to a PyTorch install's torch/lib ({why})"
            : $"no libtorch could be loaded: {folder.Explanation} ({why})";
    }

    private static DeviceReport CpuDevice(DoctorOptions options)
    {
        var cpu = torch.CPU;
        var d = new DeviceReport("cpu", CpuName())
        {
            Fp16 = MatmulThroughput.Runs(cpu, ScalarType.Float16),
            Bf16 = MatmulThroughput.Runs(cpu, ScalarType.BFloat16),
        };
        if (options.ThroughputBudget <= TimeSpan.Zero) return d;
        try { return d with { Matmul = MatmulThroughput.Measure(cpu, ScalarType.Float32, options.ThroughputBudget, options.CpuMatmulSize) }; }
        catch (Exception e) { return d with { Error = e.Message }; }
    }

    private static DeviceReport CudaDevice(int index, GpuInfo? gpu, DoctorOptions options)
    {
        var device = new Device(DeviceType.CUDA, index);
        var d = new DeviceReport($"cuda:{index}", gpu?.Name ?? "?")
        {
            ComputeCapability = gpu?.ComputeCapability,
            TotalBytes = gpu?.TotalBytes,
            FreeBytes = gpu?.FreeBytes,
        };
        try
        {
            d = d with
            {
                Fp16 = (gpu?.Fp16 ?? true) && MatmulThroughput.Runs(device, ScalarType.Float16),
                Bf16 = (gpu?.Bf16 ?? true) && MatmulThroughput.Runs(device, ScalarType.BFloat16),
            };
            if (options.ThroughputBudget > TimeSpan.Zero)
                d = d with { Matmul = MatmulThroughput.Measure(device, d.Fp16 ? ScalarType.Float16 : ScalarType.Float32, options.ThroughputBudget, options.CudaMatmulSize) };
        }
        catch (Exception e) { d = d with { Error = e.Message }; }
        return d;
    }

    private static string CpuName()
    {
        try
        {
            if (File.Exists("/proc/cpuinfo"))
                foreach (var line in File.ReadLines("/proc/cpuinfo"))
                    if (line.StartsWith("model name", StringComparison.Ordinal)) return line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException) { }
        return RuntimeInformation.ProcessArchitecture.ToString();
    }

    /// <summary>The folder of the libtorch_cpu library mapped into this process (Linux: /proc/self/maps).</summary>
    public static string? LoadedLibTorchFolder()
    {
        const string maps = "/proc/self/maps";
        if (!File.Exists(maps)) return null;
        foreach (var line in File.ReadLines(maps))
        {
            int slash = line.IndexOf('/');
            if (slash < 0) continue;
            var path = line[slash..].Trim();
            if (Path.GetFileName(path).StartsWith("libtorch_cpu.", StringComparison.Ordinal)) return Path.GetDirectoryName(path);
        }
        return null;
    }

    /// <summary>A PyTorch install's version (torch/version.py beside torch/lib), else the one TorchSharp bundles.</summary>
    public static string LibTorchVersion(string? folder, string? loadedFrom)
    {
        foreach (var dir in new[] { folder, loadedFrom })
        {
            if (dir is null) continue;
            var versionPy = Path.Combine(dir, "..", "version.py");
            if (!File.Exists(versionPy)) continue;
            foreach (var line in File.ReadLines(versionPy))
                if (line.StartsWith("__version__", StringComparison.Ordinal))
                    return line[(line.IndexOf('=') + 1)..].Trim().Trim('\'', '"') + " (" + Path.GetFullPath(versionPy) + ")";
        }
        return folder is null
            ? $"{TorchRuntime.TorchSharpLibTorchVersion} (bundled with TorchSharp-cpu)"
            : $"unknown (no version.py beside '{folder}'); TorchSharp is built for {TorchRuntime.TorchSharpLibTorchVersion}";
    }
}
