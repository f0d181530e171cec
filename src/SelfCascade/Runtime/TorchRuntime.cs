using SelfCascade.Runtime.Doctor;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Runtime;

/// <summary>Asked-for hardware is not there (e.g. CUDA without a CUDA libtorch): a clear error, not a crash.</summary>
public sealed class DeviceUnavailableException(string message) : InvalidOperationException(message);

/// <summary>
/// Loads the tensor engine and picks devices. By default the libtorch shipped with the application (TorchSharp-cpu)
/// is used. A CUDA libtorch is loaded from a folder named by <c>SELFCASCADE_LIBTORCH</c> or <c>--libtorch</c>,
/// before the first torch call, in the dependency order docs/ARCHITECTURE.md §6 gives.
/// </summary>
public static class TorchRuntime
{
    public const string LibTorchEnvironmentVariable = "SELFCASCADE_LIBTORCH";
    /// <summary>The libtorch release TorchSharp 0.107 is built for (and TorchSharp-cpu 0.107.0 bundles).</summary>
    public const string TorchSharpLibTorchVersion = "2.10.0";
    private static readonly object Gate = new();
    private static string? _loadedFrom;
    private static bool _initialised;
    private static LibTorchFolderReport? _report;

    /// <summary>The CUDA libtorch folder in use, or null for the bundled CPU libtorch.</summary>
    public static string? LibTorchDirectory => _loadedFrom;

    /// <summary>
    /// Loads libtorch from <paramref name="libtorchDir"/> (or the environment variable) when given; otherwise does
    /// nothing and lets TorchSharp load its bundled library. Must run before any other torch call to take effect.
    /// A folder that cannot be used is a <see cref="DeviceUnavailableException"/> with the reason in one line.
    /// </summary>
    public static void Initialize(string? libtorchDir = null)
    {
        var report = Load(libtorchDir);
        if (!report.IsLoaded && report.State != LibTorchFolderState.NotConfigured)
            throw new DeviceUnavailableException(report.Explanation);
    }

    /// <summary>
    /// As <see cref="Initialize"/>, but returns what happened instead of throwing (for `doctor`). The first successful
    /// call decides for the whole process; later calls return its report.
    /// </summary>
    public static LibTorchFolderReport Load(string? libtorchDir = null)
    {
        lock (Gate)
        {
            if (_initialised) return _report!;
            libtorchDir ??= Environment.GetEnvironmentVariable(LibTorchEnvironmentVariable);
            var report = string.IsNullOrWhiteSpace(libtorchDir) ? LibTorchFolder.NotConfigured() : LoadExternal(libtorchDir);
            if (report.IsLoaded || report.State == LibTorchFolderState.NotConfigured)
            {
                _report = report;
                _initialised = true;
            }
            return report;
        }
    }

    private static LibTorchFolderReport LoadExternal(string dir)
    {
        var report = LibTorchFolder.Load(dir, SystemNativeLibraryLoader.Instance, AppContext.BaseDirectory);
        if (!report.IsLoaded) return report;
        _loadedFrom = dir;
        if (report.State == LibTorchFolderState.Cuda)
        {
            try { torch.InitializeDeviceType(DeviceType.CUDA); }
            catch (Exception e)
            {
                return report with
                {
                    State = LibTorchFolderState.LibraryFailed, Library = LibTorchFolder.CudaLibrary, LoaderMessage = e.Message,
                    Explanation = $"CUDA libtorch in '{dir}' loaded but failed to initialise CUDA: {e.Message}",
                };
            }
        }
        return report;
    }

    /// <summary>
    /// Parses "cpu", "cuda" or "cuda:N" and checks it is usable; CUDA without a CUDA libtorch or GPU is a
    /// <see cref="DeviceUnavailableException"/> telling the user what to do.
    /// </summary>
    public static Device ResolveDevice(string? name)
    {
        Initialize();
        name = string.IsNullOrWhiteSpace(name) ? "cpu" : name.Trim().ToLowerInvariant();
        if (name == "cpu") return torch.CPU;
        if (name == "cuda" || name.StartsWith("cuda:", StringComparison.Ordinal))
        {
            int index = 0;
            if (name.Length > 4 && !int.TryParse(name.AsSpan(5), out index))
                throw new ArgumentException($"device '{name}' is not cpu, cuda or cuda:N");
            bool available;
            try { available = torch.cuda.is_available(); }
            catch (Exception) { available = false; }
            if (!available)
                throw new DeviceUnavailableException(
                    $"CUDA was asked for but is not available: this process runs the CPU libtorch. Point {LibTorchEnvironmentVariable} (or --libtorch) at a CUDA libtorch lib folder, e.g. a PyTorch install's torch/lib, on a machine with an NVIDIA GPU.");
            int count = torch.cuda.device_count();
            if (index >= count) throw new DeviceUnavailableException($"device cuda:{index} asked for but only {count} CUDA device(s) exist");
            return new Device(DeviceType.CUDA, index);
        }
        throw new ArgumentException($"device '{name}' is not cpu, cuda or cuda:N");
    }

    /// <summary>The weight dtype when none is asked for: fp16 on CUDA (half the memory, tensor cores), fp32 elsewhere.</summary>
    public static ScalarType DefaultDType(Device device) => device.type == DeviceType.CUDA ? ScalarType.Float16 : ScalarType.Float32;

    /// <summary>Parses fp32 / fp16 / bf16 (and the long names).</summary>
    public static ScalarType ParseDType(string? name) => (name ?? "fp32").Trim().ToLowerInvariant() switch
    {
        "fp32" or "float32" or "float" or "f32" => ScalarType.Float32,
        "fp16" or "float16" or "half" or "f16" => ScalarType.Float16,
        "bf16" or "bfloat16" => ScalarType.BFloat16,
        var other => throw new ArgumentException($"dtype '{other}' is not fp32, fp16 or bf16"),
    };

    public static string DTypeName(ScalarType t) => t switch
    {
        ScalarType.Float32 => "fp32", ScalarType.Float16 => "fp16", ScalarType.BFloat16 => "bf16", _ => t.ToString(),
    };
}
