using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Models;

/// <summary>
/// Builds networks directly on a device and dtype by setting TorchSharp's defaults for the duration of a
/// <c>using</c> block (module constructors allocate their parameters there). With <c>torch.META</c> nothing is
/// allocated at all: that is how the full-size shape tests build SDXL without 10 GB of memory.
/// </summary>
public sealed class ModelConstruction : IDisposable
{
    private readonly Device _previousDevice;
    private readonly ScalarType _previousDType;
    private bool _disposed;

    private ModelConstruction(Device? device, ScalarType? dtype)
    {
        _previousDevice = torch.get_default_device();
        _previousDType = torch.get_default_dtype();
        if (device is not null) torch.set_default_device(device);
        if (dtype is ScalarType t) torch.set_default_dtype(t);
    }

    /// <summary>Until disposed, new parameters are created on <paramref name="device"/> in <paramref name="dtype"/>.</summary>
    public static ModelConstruction On(Device? device, ScalarType? dtype = null) => new(device, dtype);

    /// <summary>
    /// A network built by <paramref name="build"/> on <paramref name="device"/> (default CPU) in <paramref name="dtype"/>
    /// (default float32), its weights loaded by <paramref name="load"/>, in eval mode; disposed if loading fails.
    /// </summary>
    public static T BuildLoaded<T>(Func<T> build, Action<T> load, Device? device, ScalarType? dtype) where T : nn.Module
    {
        T model;
        using (On(device ?? torch.CPU, dtype ?? ScalarType.Float32)) model = build();
        try { load(model); }
        catch { model.Dispose(); throw; }
        model.eval();
        return model;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        torch.set_default_device(_previousDevice);
        torch.set_default_dtype(_previousDType);
    }
}
