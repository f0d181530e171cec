using SelfCascade.Runtime;
using SelfCascade.Tests.Support;
using TorchSharp;

namespace SelfCascade.Tests;

public class RuntimeTests
{
    public RuntimeTests() => TorchSetup.Ensure();

    [Fact]
    public void CudaOnACpuBuildIsAClearError()
    {
        if (torch.cuda.is_available()) return; // only meaningful without a GPU
        var e = Assert.Throws<DeviceUnavailableException>(() => TorchRuntime.ResolveDevice("cuda"));
        Assert.Contains(TorchRuntime.LibTorchEnvironmentVariable, e.Message);
    }

    [Theory]
    [InlineData("cpu", DeviceType.CPU)]
    [InlineData(" CPU ", DeviceType.CPU)]
    [InlineData(null, DeviceType.CPU)]
    public void CpuResolves(string? name, DeviceType expected) => Assert.Equal(expected, TorchRuntime.ResolveDevice(name).type);

    [Theory]
    [InlineData("tpu")]
    [InlineData("cuda:x")]
    public void UnknownDevicesAreRejected(string name) => Assert.Throws<ArgumentException>(() => TorchRuntime.ResolveDevice(name));

    [Theory]
    [InlineData("fp16", torch.ScalarType.Float16)]
    [InlineData("bf16", torch.ScalarType.BFloat16)]
    [InlineData("fp32", torch.ScalarType.Float32)]
    public void DTypesParse(string name, torch.ScalarType expected) => Assert.Equal(expected, TorchRuntime.ParseDType(name));

    [Fact]
    public void BadDTypeIsRejected() => Assert.Throws<ArgumentException>(() => TorchRuntime.ParseDType("int8"));

    [Fact]
    public void MissingLibTorchFolderIsRejected()
    {
        // Checked before anything is loaded, so it is safe to call even after torch is initialised.
        var r = SelfCascade.Runtime.Doctor.LibTorchFolder.Load("/no/such/libtorch", SelfCascade.Runtime.Doctor.SystemNativeLibraryLoader.Instance);
        Assert.Equal(SelfCascade.Runtime.Doctor.LibTorchFolderState.FolderMissing, r.State);
        Assert.False(r.IsLoaded);
    }
}
