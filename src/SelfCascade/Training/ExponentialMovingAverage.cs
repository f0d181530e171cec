using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Training;

/// <summary>
/// An exponential moving average of weights, as diffusers' <c>EMAModel</c> with its defaults
/// (<c>update_after_step=0</c>, no warm-up power): at its n-th update (n = 1, 2, ...) the decay is
/// <c>min(decay, (1 + k) / (10 + k))</c> with <c>k = n - 1</c>, and every shadow weight moves as
/// <c>shadow -= (1 - decay_n) · (shadow - param)</c>. The shadow lives in separate tensors (typically a second copy
/// of the network, so previews and the saved model use it directly).
/// </summary>
public sealed class ExponentialMovingAverage
{
    private readonly (string Name, Tensor Source, Tensor Shadow)[] _pairs;

    public double Decay { get; }
    /// <summary>Updates so far (diffusers' <c>optimization_step</c>).</summary>
    public long UpdateCount { get; private set; }

    /// <param name="pairs">(name, live parameter, shadow tensor) with equal shapes; the shadow starts as it is given.</param>
    public ExponentialMovingAverage(IEnumerable<(string Name, Tensor Source, Tensor Shadow)> pairs, double decay)
    {
        if (!(decay >= 0 && decay < 1)) throw new ArgumentOutOfRangeException(nameof(decay), $"EMA decay {decay} must lie in [0, 1)");
        _pairs = pairs.ToArray();
        foreach (var (name, src, shadow) in _pairs)
            if (!src.shape.SequenceEqual(shadow.shape)) throw new ArgumentException($"EMA shadow of '{name}' has another shape");
        Decay = decay;
    }

    /// <summary>The decay used by update number <paramref name="n"/> (1-based).</summary>
    public static double DecayAt(long n, double decay)
    {
        long k = Math.Max(0, n - 1);
        return Math.Min(decay, (1.0 + k) / (10.0 + k));
    }

    /// <summary>One update from the live parameters.</summary>
    public void Update()
    {
        UpdateCount++;
        double d = DecayAt(UpdateCount, Decay);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using var oneMinus = (1 - d).ToScalar();
        foreach (var (_, src, shadow) in _pairs)
        {
            var diff = shadow - src.detach().to(shadow.dtype);
            shadow.sub_(diff.mul_(oneMinus));
        }
    }

    /// <summary>The shadow tensors by name (for checkpoints).</summary>
    public IEnumerable<KeyValuePair<string, Tensor>> StateTensors() => _pairs.Select(p => new KeyValuePair<string, Tensor>(p.Name, p.Shadow));

    /// <summary>Restores the shadow weights and the update count.</summary>
    public void LoadState(Func<string, Tensor?> read, long updateCount)
    {
        var missing = new List<string>();
        using var noGrad = no_grad();
        foreach (var (name, _, shadow) in _pairs)
        {
            using var t = read(name);
            if (t is null || !t.shape.SequenceEqual(shadow.shape)) { missing.Add(name); continue; }
            shadow.copy_(t);
        }
        if (missing.Count > 0) throw new InvalidDataException($"EMA state lacks or mis-shapes {missing.Count} weight(s): {string.Join(", ", missing.Take(10))}");
        UpdateCount = updateCount;
    }
}
