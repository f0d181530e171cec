namespace SelfCascade.Runtime.Doctor;

/// <summary>Why CUDA cannot be used, one value per way it can be missing.</summary>
public enum CudaUnavailableReason
{
    None,
    /// <summary>No CUDA libtorch named (the bundled CPU libtorch runs).</summary>
    NotConfigured,
    FolderMissing,
    LibraryMissing,
    /// <summary>A library failed to load (the loader's message is in the explanation).</summary>
    LibraryFailed,
    /// <summary>The named folder is a CPU build of libtorch.</summary>
    CpuOnlyLibTorch,
    /// <summary>libcuda.so.1 (the NVIDIA driver's library) cannot be loaded.</summary>
    NoDriver,
    /// <summary>The driver loads but reports no device (cuInit/cuDeviceGetCount error, or 0 devices).</summary>
    NoDevice,
    /// <summary>Everything is there but libtorch's own check says no (e.g. a driver older than the CUDA runtime).</summary>
    TorchSaysUnavailable,
}

public sealed record CudaStatus(bool Available, CudaUnavailableReason Reason, string Explanation);

/// <summary>Turns the libtorch folder result, the driver probe and libtorch's own answer into one reason and one line.</summary>
public static class CudaDiagnosis
{
    public static CudaStatus Diagnose(LibTorchFolderReport folder, CudaProbeResult probe, Func<bool> torchSeesCuda)
    {
        var reason = folder.State switch
        {
            LibTorchFolderState.NotConfigured => CudaUnavailableReason.NotConfigured,
            LibTorchFolderState.FolderMissing => CudaUnavailableReason.FolderMissing,
            LibTorchFolderState.LibraryMissing => CudaUnavailableReason.LibraryMissing,
            LibTorchFolderState.LibraryFailed => CudaUnavailableReason.LibraryFailed,
            LibTorchFolderState.CpuOnly => CudaUnavailableReason.CpuOnlyLibTorch,
            _ => CudaUnavailableReason.None,
        };
        if (reason == CudaUnavailableReason.NotConfigured)
        {
            var hint = probe.DriverLoaded && probe.DeviceCount > 0
                ? $"; the driver sees {probe.DeviceCount} GPU(s): set {TorchRuntime.LibTorchEnvironmentVariable} to a CUDA PyTorch's torch/lib to use them"
                : "";
            return new(false, reason, folder.Explanation + hint);
        }
        if (reason != CudaUnavailableReason.None) return new(false, reason, folder.Explanation);
        if (!probe.DriverLoaded)
            return new(false, CudaUnavailableReason.NoDriver, $"no NVIDIA driver: libcuda.so.1 cannot be loaded ({probe.DriverError})");
        if (probe.DeviceError is not null)
            return new(false, CudaUnavailableReason.NoDevice, $"the NVIDIA driver finds no usable device: {probe.DeviceError}");
        if (probe.DeviceCount == 0)
            return new(false, CudaUnavailableReason.NoDevice, "the NVIDIA driver loads but reports 0 devices (cuDeviceGetCount = 0)");
        bool torchOk;
        string? torchError = null;
        try { torchOk = torchSeesCuda(); }
        catch (Exception e) { torchOk = false; torchError = e.Message; }
        if (!torchOk)
            return new(false, CudaUnavailableReason.TorchSaysUnavailable,
                $"the driver sees {probe.DeviceCount} GPU(s) but libtorch reports CUDA unavailable{(torchError is null ? "" : $" ({torchError})")}: is the driver older than the CUDA version of this PyTorch build?");
        return new(true, CudaUnavailableReason.None, $"CUDA available: {probe.DeviceCount} GPU(s), libtorch from '{folder.Folder}'");
    }
}
