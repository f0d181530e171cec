using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Runtime.Doctor;

public sealed record ThroughputResult(string Device, string DType, int Size, int Iterations, double Seconds, double Tflops);

/// <summary>A square matmul repeated for a fixed wall-clock budget: a quick "is this device as fast as it should be".</summary>
public static class MatmulThroughput
{
    public static ThroughputResult Measure(Device device, ScalarType dtype, TimeSpan budget, int size)
    {
        using var mode = inference_mode();
        using var scope = NewDisposeScope();
        var a = randn([size, size], dtype: dtype, device: device);
        var b = randn([size, size], dtype: dtype, device: device);
        using (var warm = a.matmul(b)) Sync(device);
        int iterations = 0;
        var sw = Stopwatch.StartNew();
        do
        {
            for (int k = 0; k < 4; k++) { using var c = a.matmul(b); iterations++; }
            Sync(device);
        } while (sw.Elapsed < budget);
        double seconds = sw.Elapsed.TotalSeconds;
        double flops = 2.0 * size * size * (double)size * iterations;
        return new(device.ToString(), TorchRuntime.DTypeName(dtype), size, iterations, seconds, flops / seconds / 1e12);
    }

    /// <summary>Whether a small op in <paramref name="dtype"/> runs on the device (kernels exist for it).</summary>
    public static bool Runs(Device device, ScalarType dtype)
    {
        try
        {
            using var scope = NewDisposeScope();
            var x = ones([8, 8], dtype: dtype, device: device);
            var y = x.matmul(x).sum();
            Sync(device);
            return true;
        }
        catch (Exception) { return false; }
    }

    private static void Sync(Device device)
    {
        if (device.type == DeviceType.CUDA) torch.cuda.synchronize(device);
    }
}
