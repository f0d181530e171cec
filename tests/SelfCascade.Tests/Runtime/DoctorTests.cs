using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using SelfCascade.Runtime;
using SelfCascade.Runtime.Doctor;
using SelfCascade.Tests.Cli;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Runtime;

/// <summary>
/// `doctor` on a CPU machine: every way CUDA can be missing gets its own reason and one line. Folder problems use
/// real folders and the real dynamic loader (empty folder, garbage .so); driver and device problems use the real
/// P/Invoke probe against stand-in libcuda/libcudart functions (this machine has no NVIDIA driver, which is itself
/// the real "no driver" case).
/// </summary>
public sealed unsafe class DoctorTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sc-doctor-" + Guid.NewGuid().ToString("N"));

    public DoctorTests()
    {
        TorchSetup.Ensure();
        Directory.CreateDirectory(_dir);
    }

    public void Dispose() => Directory.Delete(_dir, true);

    private static readonly long TotalMem = 150_000L << 20;
    private static readonly CudaProbeResult NoDriverProbe = new() { DriverLoaded = false, DriverError = "libcuda.so.1: cannot open shared object file" };

    private void Touch(params string[] names)
    {
        foreach (var n in names) File.WriteAllText(Path.Combine(_dir, n), "not an ELF file");
    }

    private static DoctorReport Doctor(string? dir, ICudaProbe probe, Func<string?, LibTorchFolderReport>? load = null, Func<bool>? torchSeesCuda = null) =>
        RuntimeDoctor.Run(new DoctorOptions
        {
            LibTorchDir = dir,
            LoadLibTorch = load ?? (d => LibTorchFolder.Load(d, SystemNativeLibraryLoader.Instance)),
            CudaProbe = probe,
            TorchSeesCuda = torchSeesCuda,
            ThroughputBudget = TimeSpan.FromSeconds(0.05),
            CpuMatmulSize = 128,
            Environment = _ => null,
        });

    private sealed class FixedProbe(CudaProbeResult result) : ICudaProbe
    {
        public CudaProbeResult Probe(string? libtorchDir) => result;
    }

    /// <summary>Pretends every library loads except the ones listed (with the loader message given).</summary>
    private sealed class FakeLoader(Dictionary<string, string>? failures = null) : INativeLibraryLoader
    {
        public List<string> Loaded { get; } = [];
        public bool TryLoad(string pathOrName, out IntPtr handle, out string? error)
        {
            if (failures is not null && failures.TryGetValue(Path.GetFileName(pathOrName), out error)) { handle = 0; return false; }
            Loaded.Add(pathOrName);
            handle = 1; error = null;
            return true;
        }
        public bool TryGetExport(IntPtr handle, string name, out IntPtr address) { address = 0; return false; }
    }

    [Fact]
    public void NoFolderNamedSaysTheBundledCpuLibTorchRuns()
    {
        var r = Doctor(null, new FixedProbe(NoDriverProbe));
        Assert.False(r.Cuda.Available);
        Assert.Equal(CudaUnavailableReason.NotConfigured, r.Cuda.Reason);
        Assert.Contains(TorchRuntime.LibTorchEnvironmentVariable, r.Cuda.Explanation);
        Assert.Null(r.TorchError);
        Assert.Contains(TorchRuntime.TorchSharpLibTorchVersion, r.LibTorchVersion);
        Assert.NotNull(r.LibTorchLoadedFrom);
        Assert.True(File.Exists(Path.Combine(r.LibTorchLoadedFrom!, "libtorch_cpu.so")), r.LibTorchLoadedFrom);
        var cpu = Assert.Single(r.Devices);
        Assert.Equal("cpu", cpu.Device);
        Assert.True(cpu.Matmul!.Tflops > 0 && cpu.Matmul.Iterations >= 4);
        Assert.True(cpu.Bf16);
    }

    [Fact]
    public void MissingFolder()
    {
        var r = Doctor("/no/such/libtorch", new FixedProbe(NoDriverProbe));
        Assert.Equal(CudaUnavailableReason.FolderMissing, r.Cuda.Reason);
        Assert.Contains("/no/such/libtorch", r.Cuda.Explanation);
        Assert.Contains("does not exist", r.Cuda.Explanation);
    }

    [Fact]
    public void EmptyFolderLacksTheFirstLibrary()
    {
        var r = Doctor(_dir, new FixedProbe(NoDriverProbe));
        Assert.Equal(CudaUnavailableReason.LibraryMissing, r.Cuda.Reason);
        Assert.Equal("libc10.so", r.LibTorch.Library);
        Assert.Contains("lacks libc10.so", r.Cuda.Explanation);
    }

    [Fact]
    public void GarbageLibraryGivesTheLoadersMessage()
    {
        Touch("libc10.so", "libtorch_cpu.so", "libtorch.so", "libc10_cuda.so", "libtorch_cuda.so");
        var r = Doctor(_dir, new FixedProbe(NoDriverProbe));
        Assert.Equal(CudaUnavailableReason.LibraryFailed, r.Cuda.Reason);
        Assert.Equal("libc10.so", r.LibTorch.Library);
        Assert.False(string.IsNullOrWhiteSpace(r.LibTorch.LoaderMessage));
        // glibc's own words for a file that is not ELF ("invalid ELF header" / "file too short").
        Assert.Matches("ELF|too short", r.LibTorch.LoaderMessage!);
        Assert.Contains(r.LibTorch.LoaderMessage!, r.Cuda.Explanation);
        Assert.DoesNotContain('\n', r.Cuda.Explanation);
    }

    [Fact]
    public void CudaLibraryFailingToLoadIsNamed()
    {
        Touch("libc10.so", "libtorch_cpu.so", "libtorch.so", "libc10_cuda.so", "libtorch_cuda.so", "libLibTorchSharp.so");
        var loader = new FakeLoader(new() { ["libtorch_cuda.so"] = "libcudnn.so.9: cannot open shared object file: No such file or directory" });
        var r = Doctor(_dir, new FixedProbe(NoDriverProbe), d => LibTorchFolder.Load(d, loader));
        Assert.Equal(CudaUnavailableReason.LibraryFailed, r.Cuda.Reason);
        Assert.Equal("libtorch_cuda.so", r.LibTorch.Library);
        Assert.Contains("libcudnn.so.9", r.Cuda.Explanation);
        Assert.Equal(["libc10.so", "libtorch_cpu.so", "libc10_cuda.so"], loader.Loaded.Select(f => Path.GetFileName(f)!).ToArray());
    }

    [Fact]
    public void PartOfTheCudaLibrariesIsMissing()
    {
        Touch("libc10.so", "libtorch_cpu.so", "libtorch.so", "libc10_cuda.so", "libLibTorchSharp.so");
        var r = Doctor(_dir, new FixedProbe(NoDriverProbe), d => LibTorchFolder.Load(d, new FakeLoader()));
        Assert.Equal(CudaUnavailableReason.LibraryMissing, r.Cuda.Reason);
        Assert.Equal("libtorch_cuda.so", r.LibTorch.Library);
    }

    [Fact]
    public void MissingTorchSharpBridgeIsNamed()
    {
        Touch("libc10.so", "libtorch_cpu.so", "libtorch.so", "libc10_cuda.so", "libtorch_cuda.so");
        var r = Doctor(_dir, new FixedProbe(NoDriverProbe), d => LibTorchFolder.Load(d, new FakeLoader(), applicationDir: _dir));
        Assert.Equal(CudaUnavailableReason.LibraryMissing, r.Cuda.Reason);
        Assert.Equal(LibTorchFolder.Bridge, r.LibTorch.Library);
    }

    [Fact]
    public void CpuBuildOfLibTorch()
    {
        Touch("libc10.so", "libtorch_cpu.so", "libtorch.so", "libLibTorchSharp.so");
        var loader = new FakeLoader();
        var r = Doctor(_dir, new FixedProbe(NoDriverProbe), d => LibTorchFolder.Load(d, loader));
        Assert.Equal(CudaUnavailableReason.CpuOnlyLibTorch, r.Cuda.Reason);
        Assert.Contains("CPU build", r.Cuda.Explanation);
        Assert.Equal(["libc10.so", "libtorch_cpu.so", "libtorch.so", "libLibTorchSharp.so"], loader.Loaded.Select(f => Path.GetFileName(f)!).ToArray());
    }

    private LibTorchFolderReport CudaFolder(string? d)
    {
        Touch("libc10.so", "libtorch_cpu.so", "libtorch.so", "libc10_cuda.so", "libtorch_cuda.so", "libLibTorchSharp.so");
        return LibTorchFolder.Load(d, new FakeLoader());
    }

    [Fact]
    public void NoDriverOnThisMachineIsTheRealLoadersMessage()
    {
        // The real probe, the real loader: this CPU machine has no libcuda.so.1.
        var r = Doctor(_dir, new CudaProbe(), CudaFolder);
        Assert.Equal(LibTorchFolderState.Cuda, r.LibTorch.State);
        Assert.Equal(CudaUnavailableReason.NoDriver, r.Cuda.Reason);
        Assert.Contains("libcuda.so.1", r.Cuda.Explanation);
        Assert.False(r.Driver.DriverLoaded);
        Assert.False(string.IsNullOrWhiteSpace(r.Driver.DriverError));
    }

    // ---- stand-ins for libcuda.so.1 / libcudart: real function pointers the real probe calls through.

    private static int _fakeDevices;
    private static int _fakeInitResult;

    [UnmanagedCallersOnly] private static int CuInit(uint flags) => _fakeInitResult;
    [UnmanagedCallersOnly] private static int CuDriverGetVersion(int* v) { *v = 12040; return 0; }
    [UnmanagedCallersOnly] private static int CuDeviceGetCount(int* n) { *n = _fakeDevices; return 0; }
    [UnmanagedCallersOnly] private static int CuDeviceGet(int* d, int ordinal) { *d = ordinal; return 0; }
    [UnmanagedCallersOnly]
    private static int CuDeviceGetName(byte* name, int len, int dev)
    {
        var bytes = Encoding.ASCII.GetBytes($"Fake H200 #{dev}\0");
        for (int i = 0; i < bytes.Length && i < len; i++) name[i] = bytes[i];
        return 0;
    }
    [UnmanagedCallersOnly] private static int CuDeviceTotalMem(nuint* bytes, int dev) { *bytes = (nuint)TotalMem; return 0; }
    [UnmanagedCallersOnly] private static int CuDeviceGetAttribute(int* v, int attr, int dev) { *v = attr == 75 ? 9 : 0; return 0; }
    private static readonly IntPtr NoDeviceName = Marshal.StringToHGlobalAnsi("CUDA_ERROR_NO_DEVICE");
    [UnmanagedCallersOnly] private static int CuGetErrorName(int code, byte** name) { *name = (byte*)NoDeviceName; return 0; }
    [ThreadStatic] private static int _current;
    [UnmanagedCallersOnly] private static int CudaGetDevice(int* d) { *d = _current; return 0; }
    [UnmanagedCallersOnly] private static int CudaSetDevice(int d) { _current = d; return 0; }
    [UnmanagedCallersOnly] private static int CudaMemGetInfo(nuint* free, nuint* total) { *free = (nuint)((100_000L + _current) << 20); *total = (nuint)TotalMem; return 0; }

    private sealed class FakeCudaLibraries : INativeLibraryLoader
    {
        public bool HasRuntime { get; init; } = true;
        private readonly Dictionary<string, IntPtr> _driver = new()
        {
            ["cuInit"] = (IntPtr)(delegate* unmanaged<uint, int>)&CuInit,
            ["cuDriverGetVersion"] = (IntPtr)(delegate* unmanaged<int*, int>)&CuDriverGetVersion,
            ["cuDeviceGetCount"] = (IntPtr)(delegate* unmanaged<int*, int>)&CuDeviceGetCount,
            ["cuDeviceGet"] = (IntPtr)(delegate* unmanaged<int*, int, int>)&CuDeviceGet,
            ["cuDeviceGetName"] = (IntPtr)(delegate* unmanaged<byte*, int, int, int>)&CuDeviceGetName,
            ["cuDeviceTotalMem_v2"] = (IntPtr)(delegate* unmanaged<nuint*, int, int>)&CuDeviceTotalMem,
            ["cuDeviceGetAttribute"] = (IntPtr)(delegate* unmanaged<int*, int, int, int>)&CuDeviceGetAttribute,
            ["cuGetErrorName"] = (IntPtr)(delegate* unmanaged<int, byte**, int>)&CuGetErrorName,
        };
        private readonly Dictionary<string, IntPtr> _runtime = new()
        {
            ["cudaGetDevice"] = (IntPtr)(delegate* unmanaged<int*, int>)&CudaGetDevice,
            ["cudaSetDevice"] = (IntPtr)(delegate* unmanaged<int, int>)&CudaSetDevice,
            ["cudaMemGetInfo"] = (IntPtr)(delegate* unmanaged<nuint*, nuint*, int>)&CudaMemGetInfo,
        };
        public List<string> Tried { get; } = [];
        public bool TryLoad(string pathOrName, out IntPtr handle, out string? error)
        {
            Tried.Add(pathOrName);
            error = null;
            handle = pathOrName == "libcuda.so.1" ? 1 : HasRuntime && Path.GetFileName(pathOrName).StartsWith("libcudart", StringComparison.Ordinal) ? 2 : 0;
            if (handle == 0) error = pathOrName + ": cannot open shared object file";
            return handle != 0;
        }
        public bool TryGetExport(IntPtr handle, string name, out IntPtr address) =>
            (handle == 1 ? _driver : _runtime).TryGetValue(name, out address);
    }

    [Fact]
    public void DriverWithoutDevicesIsNoDevice()
    {
        _fakeInitResult = 100; // CUDA_ERROR_NO_DEVICE, as cuInit returns on a machine with a driver but no GPU
        _fakeDevices = 0;
        var r = Doctor(_dir, new CudaProbe(new FakeCudaLibraries()), CudaFolder);
        Assert.True(r.Driver.DriverLoaded);
        Assert.Equal(12040, r.Driver.DriverVersion);
        Assert.Equal(CudaUnavailableReason.NoDevice, r.Cuda.Reason);
        Assert.Contains("CUDA_ERROR_NO_DEVICE (100)", r.Cuda.Explanation);
    }

    [Fact]
    public void ZeroDevicesCountedIsNoDevice()
    {
        _fakeInitResult = 0;
        _fakeDevices = 0;
        var r = Doctor(_dir, new CudaProbe(new FakeCudaLibraries()), CudaFolder);
        Assert.Equal(CudaUnavailableReason.NoDevice, r.Cuda.Reason);
        Assert.Contains("cuDeviceGetCount = 0", r.Cuda.Explanation);
    }

    [Fact]
    public void ProbeReadsNameComputeCapabilityAndMemoryThroughTheDriverAndRuntime()
    {
        _fakeInitResult = 0;
        _fakeDevices = 2;
        var libs = new FakeCudaLibraries();
        File.WriteAllText(Path.Combine(_dir, "libcudart.so.12"), "stand-in");
        var probe = new CudaProbe(libs).Probe(_dir);
        Assert.Equal(2, probe.DeviceCount);
        Assert.Equal(Path.Combine(_dir, "libcudart.so.12"), probe.RuntimeLibrary); // the libtorch folder's runtime first
        var g = probe.Devices[1];
        Assert.Equal("Fake H200 #1", g.Name);
        Assert.Equal("9.0", g.ComputeCapability);
        Assert.Equal(150_000L << 20, g.TotalBytes);
        Assert.Equal((100_000L + 1) << 20, g.FreeBytes); // cudaMemGetInfo after cudaSetDevice(1)
        Assert.True(g.Fp16 && g.Bf16);
        Assert.False(new GpuInfo(0, "T4", 7, 5, 1, 1).Bf16);

        var noRuntime = new CudaProbe(new FakeCudaLibraries { HasRuntime = false }).Probe(null);
        Assert.Null(noRuntime.Devices[0].FreeBytes);
        Assert.Contains("libcudart", noRuntime.RuntimeError);
    }

    [Fact]
    public void TorchDisagreeingWithTheDriverIsExplained()
    {
        _fakeInitResult = 0;
        _fakeDevices = 1;
        var r = Doctor(_dir, new CudaProbe(new FakeCudaLibraries()), CudaFolder, torchSeesCuda: () => false);
        Assert.Equal(CudaUnavailableReason.TorchSaysUnavailable, r.Cuda.Reason);
        Assert.Contains("1 GPU(s)", r.Cuda.Explanation);
    }

    [Fact]
    public void EverythingPresentIsAvailable()
    {
        _fakeInitResult = 0;
        _fakeDevices = 1;
        var status = CudaDiagnosis.Diagnose(CudaFolder(_dir), new CudaProbe(new FakeCudaLibraries()).Probe(_dir), () => true);
        Assert.True(status.Available);
        Assert.Equal(CudaUnavailableReason.None, status.Reason);
    }

    [Fact]
    public void CliPrintsOneScreenAndJson()
    {
        var (code, text, err) = CliRunner.Run("doctor", "--throughput-seconds", "0.05");
        Assert.True(code == 0, err);
        Assert.Contains("torchsharp    0.107.0", text);
        Assert.Matches(@"cuda          NOT available \[\w+\]: ", text);
        Assert.Matches(@"cpu .*matmul fp32 1024x1024: [0-9.]+ TFLOP/s", text);

        (code, var json, err) = CliRunner.Run("doctor", "--json", "--throughput-seconds", "0");
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        Assert.False(root.GetProperty("cuda").GetProperty("available").GetBoolean());
        Assert.False(string.IsNullOrEmpty(root.GetProperty("cuda").GetProperty("explanation").GetString()));
        Assert.Equal("0.107.0", root.GetProperty("torch_sharp_version").GetString());
        Assert.Equal("cpu", root.GetProperty("devices")[0].GetProperty("device").GetString());
    }
}
