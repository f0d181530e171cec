using System.Runtime.InteropServices;

namespace SelfCascade.Runtime.Doctor;

/// <summary>One GPU as the NVIDIA driver reports it. <see cref="FreeBytes"/> is null when no CUDA runtime was found.</summary>
public sealed record GpuInfo(int Index, string Name, int ComputeMajor, int ComputeMinor, long TotalBytes, long? FreeBytes)
{
    public string ComputeCapability => $"{ComputeMajor}.{ComputeMinor}";
    /// <summary>fp16 arithmetic at full rate: compute capability 5.3 and up (tensor cores from 7.0).</summary>
    public bool Fp16 => ComputeMajor > 5 || (ComputeMajor == 5 && ComputeMinor >= 3);
    /// <summary>bf16 natively: compute capability 8.0 (Ampere) and up.</summary>
    public bool Bf16 => ComputeMajor >= 8;
}

/// <summary>What the NVIDIA driver (libcuda.so.1) and the CUDA runtime (libcudart) say about this machine.</summary>
public sealed record CudaProbeResult
{
    /// <summary>Whether libcuda.so.1 (the driver's library) could be loaded; <see cref="DriverError"/> says why not.</summary>
    public bool DriverLoaded { get; init; }
    public string? DriverError { get; init; }
    /// <summary>cuDriverGetVersion, e.g. 12040 = CUDA 12.4.</summary>
    public int? DriverVersion { get; init; }
    /// <summary>Devices the driver counts (0 when none or on error).</summary>
    public int DeviceCount { get; init; }
    /// <summary>cuInit/cuDeviceGetCount failure (e.g. CUDA_ERROR_NO_DEVICE), null when they succeeded.</summary>
    public string? DeviceError { get; init; }
    public IReadOnlyList<GpuInfo> Devices { get; init; } = [];
    /// <summary>The CUDA runtime used for free memory, or why none was found.</summary>
    public string? RuntimeLibrary { get; init; }
    public string? RuntimeError { get; init; }
}

/// <summary>Asks the driver and the CUDA runtime about GPUs; a seam so tests can play machines this one is not.</summary>
public interface ICudaProbe
{
    CudaProbeResult Probe(string? libtorchDir);
}

/// <summary>
/// The real probe: the driver API from libcuda.so.1 (cuInit, cuDeviceGetCount, names, compute capability, total
/// memory: a stable ABI every driver has), and cudaMemGetInfo from the CUDA runtime libtorch loaded (libcudart.so*
/// found in the libtorch folder, in a pip install's nvidia/*/lib, or already in the process by soname); TorchSharp
/// has no call for free memory.
/// </summary>
public sealed unsafe class CudaProbe(INativeLibraryLoader? loader = null, string driverLibrary = "libcuda.so.1") : ICudaProbe
{
    private readonly INativeLibraryLoader _loader = loader ?? SystemNativeLibraryLoader.Instance;
    private const int AttrComputeMajor = 75, AttrComputeMinor = 76;

    public CudaProbeResult Probe(string? libtorchDir)
    {
        if (!_loader.TryLoad(driverLibrary, out var drv, out var loadError))
            return new CudaProbeResult { DriverLoaded = false, DriverError = loadError };
        IntPtr Fn(string name) =>
            _loader.TryGetExport(drv, name, out var p) ? p : throw new EntryPointNotFoundException($"{driverLibrary} has no {name}");
        try
        {
            var cuInit = Fn("cuInit");
            var cuDriverGetVersion = Fn("cuDriverGetVersion");
            var cuDeviceGetCount = Fn("cuDeviceGetCount");
            var cuDeviceGet = Fn("cuDeviceGet");
            var cuDeviceGetName = Fn("cuDeviceGetName");
            var cuDeviceTotalMem = Fn("cuDeviceTotalMem_v2");
            var cuDeviceGetAttribute = Fn("cuDeviceGetAttribute");
            int version = 0;
            ((delegate* unmanaged<int*, int>)cuDriverGetVersion)(&version);
            int rc = ((delegate* unmanaged<uint, int>)cuInit)(0);
            var result = new CudaProbeResult { DriverLoaded = true, DriverVersion = version };
            if (rc != 0) return result with { DeviceError = $"cuInit failed: {DriverErrorName(drv, rc)}" };
            int count = 0;
            rc = ((delegate* unmanaged<int*, int>)cuDeviceGetCount)(&count);
            if (rc != 0) return result with { DeviceError = $"cuDeviceGetCount failed: {DriverErrorName(drv, rc)}" };
            var (memInfo, runtimeLib, runtimeError) = FindRuntime(libtorchDir);
            var devices = new List<GpuInfo>();
            var nameBuffer = stackalloc byte[256];
            for (int i = 0; i < count; i++)
            {
                int dev = 0, major = 0, minor = 0;
                nuint total = 0;
                ((delegate* unmanaged<int*, int, int>)cuDeviceGet)(&dev, i);
                ((delegate* unmanaged<byte*, int, int, int>)cuDeviceGetName)(nameBuffer, 256, dev);
                ((delegate* unmanaged<nuint*, int, int>)cuDeviceTotalMem)(&total, dev);
                ((delegate* unmanaged<int*, int, int, int>)cuDeviceGetAttribute)(&major, AttrComputeMajor, dev);
                ((delegate* unmanaged<int*, int, int, int>)cuDeviceGetAttribute)(&minor, AttrComputeMinor, dev);
                devices.Add(new GpuInfo(i, Marshal.PtrToStringUTF8((IntPtr)nameBuffer) ?? "?", major, minor, (long)total, memInfo?.Invoke(i)?.Free));
            }
            return result with { DeviceCount = count, Devices = devices, RuntimeLibrary = runtimeLib, RuntimeError = runtimeError };
        }
        catch (EntryPointNotFoundException e)
        {
            return new CudaProbeResult { DriverLoaded = true, DriverVersion = null, DeviceError = e.Message };
        }
    }

    private string DriverErrorName(IntPtr drv, int code)
    {
        if (_loader.TryGetExport(drv, "cuGetErrorName", out var p))
        {
            byte* name = null;
            if (((delegate* unmanaged<int, byte**, int>)p)(code, &name) == 0 && name != null)
                return $"{Marshal.PtrToStringUTF8((IntPtr)name)} ({code})";
        }
        return $"error {code}";
    }

    /// <summary>Where libcudart may be: the libtorch folder, a pip install's nvidia/*/lib beside torch/, or already loaded.</summary>
    public static IEnumerable<string> RuntimeCandidates(string? libtorchDir)
    {
        if (!string.IsNullOrWhiteSpace(libtorchDir) && Directory.Exists(libtorchDir))
        {
            foreach (var f in Directory.EnumerateFiles(libtorchDir, "libcudart.so*").Order(StringComparer.Ordinal)) yield return f;
            var nvidia = Path.GetFullPath(Path.Combine(libtorchDir, "..", "..", "nvidia"));
            if (Directory.Exists(nvidia))
                foreach (var lib in Directory.EnumerateDirectories(nvidia).Order(StringComparer.Ordinal))
                {
                    var libDir = Path.Combine(lib, "lib");
                    if (!Directory.Exists(libDir)) continue;
                    foreach (var f in Directory.EnumerateFiles(libDir, "libcudart.so*").Order(StringComparer.Ordinal)) yield return f;
                }
        }
        foreach (var soname in new[] { "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0", "libcudart.so" }) yield return soname;
    }

    /// <summary>Device memory in use (total - free, cudaMemGetInfo) of a device, or null without a CUDA runtime.</summary>
    public Func<long?>? DeviceMemoryUsed(string? libtorchDir, int device)
    {
        var (memInfo, _, _) = FindRuntime(libtorchDir);
        if (memInfo is null) return null;
        return () => memInfo(device) is { } m ? m.Total - m.Free : null;
    }

    /// <summary>Free device memory (cudaMemGetInfo) of a device, or null without a CUDA runtime.</summary>
    public Func<long?>? DeviceMemoryFree(string? libtorchDir, int device)
    {
        var (memInfo, _, _) = FindRuntime(libtorchDir);
        if (memInfo is null) return null;
        return () => memInfo(device)?.Free;
    }

    private (Func<int, (long Free, long Total)?>? MemInfo, string? Library, string? Error) FindRuntime(string? libtorchDir)
    {
        string? lastError = null;
        foreach (var candidate in RuntimeCandidates(libtorchDir))
        {
            if (!_loader.TryLoad(candidate, out var rt, out var error)) { lastError = error; continue; }
            if (!_loader.TryGetExport(rt, "cudaMemGetInfo", out var memGetInfo) || !_loader.TryGetExport(rt, "cudaSetDevice", out var setDevice)
                || !_loader.TryGetExport(rt, "cudaGetDevice", out var getDevice))
            { lastError = $"{candidate} lacks cudaMemGetInfo/cudaSetDevice"; continue; }
            (long Free, long Total)? Free(int device)
            {
                int previous = 0;
                ((delegate* unmanaged<int*, int>)getDevice)(&previous);
                if (((delegate* unmanaged<int, int>)setDevice)(device) != 0) return null;
                nuint free = 0, total = 0;
                int rc = ((delegate* unmanaged<nuint*, nuint*, int>)memGetInfo)(&free, &total);
                ((delegate* unmanaged<int, int>)setDevice)(previous);
                return rc == 0 ? ((long)free, (long)total) : null;
            }
            return (Free, candidate, null);
        }
        return (null, null, $"no CUDA runtime (libcudart) found, so free memory is unknown ({lastError})");
    }
}
