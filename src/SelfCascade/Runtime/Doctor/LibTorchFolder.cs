namespace SelfCascade.Runtime.Doctor;

/// <summary>What a libtorch folder named by SELFCASCADE_LIBTORCH / --libtorch turned out to be.</summary>
public enum LibTorchFolderState
{
    /// <summary>No folder named: the libtorch bundled with the application (TorchSharp-cpu) is used, if any.</summary>
    NotConfigured,
    FolderMissing,
    /// <summary>A library of the load order is absent from the folder.</summary>
    LibraryMissing,
    /// <summary>A library is there but the dynamic loader refused it (its message says why).</summary>
    LibraryFailed,
    /// <summary>Loaded, but the folder holds a CPU build of libtorch (no libtorch_cuda).</summary>
    CpuOnly,
    /// <summary>Loaded, CUDA libraries included.</summary>
    Cuda,
}

/// <summary>The outcome of loading a libtorch folder, with a one-line explanation for the user.</summary>
public sealed record LibTorchFolderReport(string? Folder, LibTorchFolderState State, string Explanation)
{
    /// <summary>The library that was missing or failed to load.</summary>
    public string? Library { get; init; }
    /// <summary>The dynamic loader's message for <see cref="LibTorchFolderState.LibraryFailed"/>.</summary>
    public string? LoaderMessage { get; init; }
    /// <summary>Full paths loaded, in order.</summary>
    public IReadOnlyList<string> Loaded { get; init; } = [];

    public bool IsLoaded => State is LibTorchFolderState.CpuOnly or LibTorchFolderState.Cuda;
}

/// <summary>
/// Loads a libtorch folder in the dependency order DESIGN.md §6 gives (libc10, libtorch_cpu, libc10_cuda,
/// libtorch_cuda, libtorch, then TorchSharp's libLibTorchSharp from the folder or beside the application), and
/// classifies every way it can fail. Nothing is loaded after the first failure.
/// </summary>
public static class LibTorchFolder
{
    public const string CudaLibrary = "libtorch_cuda.so";
    public static readonly string[] LoadOrder = ["libc10.so", "libtorch_cpu.so", "libc10_cuda.so", CudaLibrary, "libtorch.so"];
    public const string Bridge = "libLibTorchSharp.so";

    public static LibTorchFolderReport NotConfigured() => new(null, LibTorchFolderState.NotConfigured,
        $"no CUDA libtorch named: {TorchRuntime.LibTorchEnvironmentVariable} and --libtorch are unset, so only a CPU libtorch bundled with the application can run (the GPU bundle has none)");

    public static LibTorchFolderReport Load(string? dir, INativeLibraryLoader loader, string? applicationDir = null)
    {
        if (string.IsNullOrWhiteSpace(dir)) return NotConfigured();
        if (!Directory.Exists(dir))
            return new(dir, LibTorchFolderState.FolderMissing,
                $"libtorch folder '{dir}' (from --libtorch or {TorchRuntime.LibTorchEnvironmentVariable}) does not exist");
        bool hasC10Cuda = File.Exists(Path.Combine(dir, "libc10_cuda.so"));
        bool hasTorchCuda = File.Exists(Path.Combine(dir, CudaLibrary));
        bool cuda = hasC10Cuda || hasTorchCuda;
        var loaded = new List<string>();
        foreach (var lib in LoadOrder)
        {
            bool isCudaLib = lib.Contains("cuda", StringComparison.Ordinal);
            if (isCudaLib && !cuda) continue; // a CPU build of libtorch: allowed, CUDA is then unavailable
            var path = Path.Combine(dir, lib);
            if (!File.Exists(path))
                return new(dir, LibTorchFolderState.LibraryMissing, $"libtorch folder '{dir}' lacks {lib}" +
                    (isCudaLib ? " (it has only part of the CUDA libraries)" : " (not a libtorch lib folder? name a PyTorch install's torch/lib)"))
                { Library = lib, Loaded = loaded };
            if (!loader.TryLoad(path, out _, out var error))
                return new(dir, LibTorchFolderState.LibraryFailed, $"the dynamic loader refused {path}: {error}")
                { Library = lib, LoaderMessage = error, Loaded = loaded };
            loaded.Add(path);
        }
        var candidates = new List<string> { Path.Combine(dir, Bridge) };
        if (applicationDir is not null) candidates.Add(Path.Combine(applicationDir, Bridge));
        var bridge = candidates.FirstOrDefault(File.Exists);
        if (bridge is null)
            return new(dir, LibTorchFolderState.LibraryMissing,
                $"{Bridge} (TorchSharp's native bridge) is neither in '{dir}' nor beside the application") { Library = Bridge, Loaded = loaded };
        if (!loader.TryLoad(bridge, out _, out var bridgeError))
            return new(dir, LibTorchFolderState.LibraryFailed, $"the dynamic loader refused {bridge}: {bridgeError}")
            { Library = Bridge, LoaderMessage = bridgeError, Loaded = loaded };
        loaded.Add(bridge);
        return cuda
            ? new(dir, LibTorchFolderState.Cuda, $"CUDA libtorch loaded from '{dir}'") { Loaded = loaded }
            : new(dir, LibTorchFolderState.CpuOnly, $"'{dir}' holds a CPU build of libtorch (no {CudaLibrary}); install a CUDA build of PyTorch and name its torch/lib") { Loaded = loaded };
    }
}
