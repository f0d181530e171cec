using System.Diagnostics;

namespace SelfCascade.Pipelines;

/// <summary>The network a timed call ran.</summary>
public enum NetworkCall { TextEncoder, Unet, VaeDecode, VaeEncode }

/// <summary>
/// Optional instrumentation of <see cref="StableDiffusionPipeline"/> (its <c>CallTimer</c>; null, i.e. off, by
/// default): receives the wall time of every network call the pipeline makes while it runs, so the time spent
/// outside the networks can be measured directly as the run's wall time minus these intervals. <paramref name="stage"/>
/// is the cascade stage of a UNet call (0 = base) and -1 for the other calls. With a timer set on a CUDA device the
/// pipeline synchronises the device before and after each call, so an interval holds that call's own kernels.
/// </summary>
public interface INetworkCallTimer
{
    void Record(NetworkCall call, int stage, TimeSpan elapsed);
}

/// <summary>A timer that counts and sums the recorded calls per network (and UNet time per stage).</summary>
public sealed class NetworkCallTotals : INetworkCallTimer
{
    private readonly Dictionary<NetworkCall, (int Count, TimeSpan Total)> _calls = [];
    private readonly SortedDictionary<int, (int Count, TimeSpan Total)> _unetStages = [];

    public void Record(NetworkCall call, int stage, TimeSpan elapsed)
    {
        var (n, t) = _calls.GetValueOrDefault(call);
        _calls[call] = (n + 1, t + elapsed);
        if (call == NetworkCall.Unet)
        {
            var (sn, st) = _unetStages.GetValueOrDefault(stage);
            _unetStages[stage] = (sn + 1, st + elapsed);
        }
    }

    public int Count(NetworkCall call) => _calls.GetValueOrDefault(call).Count;
    public TimeSpan Total(NetworkCall call) => _calls.GetValueOrDefault(call).Total;
    /// <summary>UNet calls and their summed time in cascade stage <paramref name="stage"/>.</summary>
    public (int Count, TimeSpan Total) UnetInStage(int stage) => _unetStages.GetValueOrDefault(stage);
    /// <summary>All recorded intervals together.</summary>
    public TimeSpan Sum => _calls.Values.Aggregate(TimeSpan.Zero, (a, c) => a + c.Total);
}

/// <summary>Starts and stops one timed call; does nothing (no clock read, no device sync) when no timer is set.</summary>
internal readonly struct NetworkCallClock
{
    private readonly INetworkCallTimer? _timer;
    private readonly TorchSharp.torch.Device? _device;
    private readonly long _start;

    private NetworkCallClock(INetworkCallTimer? timer, TorchSharp.torch.Device device)
    {
        _timer = timer;
        _device = device;
        if (timer is null) return;
        Sync(device);
        _start = Stopwatch.GetTimestamp();
    }

    public static NetworkCallClock Start(INetworkCallTimer? timer, TorchSharp.torch.Device device) => new(timer, device);

    public void Stop(NetworkCall call, int stage = -1)
    {
        if (_timer is null) return;
        Sync(_device!);
        _timer.Record(call, stage, Stopwatch.GetElapsedTime(_start));
    }

    private static void Sync(TorchSharp.torch.Device device)
    {
        if (device.type == TorchSharp.DeviceType.CUDA) TorchSharp.torch.cuda.synchronize();
    }
}
