using System.Runtime.InteropServices;
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
    private static readonly object Gate = new();
    private static string? _loadedFrom;
    private static bool _initialised;

    /// <summary>The CUDA libtorch folder in use, or null for the bundled CPU libtorch.</summary>
    public static string? LibTorchDirectory => _loadedFrom;

    /// <summary>
    /// Loads libtorch from <paramref name="libtorchDir"/> (or the environment variable) when given; otherwise does
    /// nothing and lets TorchSharp load its bundled library. Must run before any other torch call to take effect.
    /// </summary>
    public static void Initialize(string? libtorchDir = null)
    {
        lock (Gate)
        {
            if (_initialised) return;
            libtorchDir ??= Environment.GetEnvironmentVariable(LibTorchEnvironmentVariable);
            if (!string.IsNullOrWhiteSpace(libtorchDir)) LoadExternal(libtorchDir);
            _initialised = true;
        }
    }

    private static void LoadExternal(string dir)
    {
        if (!Directory.Exists(dir))
            throw new DeviceUnavailableException($"libtorch folder '{dir}' (from --libtorch or {LibTorchEnvironmentVariable}) does not exist");
        string[] order = OperatingSystem.IsWindows()
            ? ["c10.dll", "torch_cpu.dll", "c10_cuda.dll", "torch_cuda.dll", "torch.dll"]
            : ["libc10.so", "libtorch_cpu.so", "libc10_cuda.so", "libtorch_cuda.so", "libtorch.so"];
        foreach (var lib in order)
        {
            var path = Path.Combine(dir, lib);
            if (!File.Exists(path))
            {
                // CPU-only libtorch folders have no CUDA libraries: allowed, CUDA will then be unavailable.
                if (lib.Contains("cuda")) continue;
                throw new DeviceUnavailableException($"libtorch folder '{dir}' lacks {lib}");
            }
            try { NativeLibrary.Load(path); }
            catch (DllNotFoundException e) { throw new DeviceUnavailableException($"cannot load {path}: {e.Message}"); }
        }
        var bridge = OperatingSystem.IsWindows() ? "LibTorchSharp.dll" : "libLibTorchSharp.so";
        var candidates = new[] { Path.Combine(dir, bridge), Path.Combine(AppContext.BaseDirectory, bridge) };
        var found = candidates.FirstOrDefault(File.Exists)
            ?? throw new DeviceUnavailableException($"{bridge} not found in '{dir}' or beside the application");
        NativeLibrary.Load(found);
        _loadedFrom = dir;
        if (File.Exists(Path.Combine(dir, order[3])))
        {
            try { torch.InitializeDeviceType(DeviceType.CUDA); }
            catch (Exception e) { throw new DeviceUnavailableException($"CUDA libtorch in '{dir}' failed to initialise: {e.Message}"); }
        }
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
