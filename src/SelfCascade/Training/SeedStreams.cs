using TorchSharp;

namespace SelfCascade.Training;

/// <summary>
/// Every random choice of a training run is a pure function of (seed, stream, index): epoch orders, crops, caption
/// dropout, noise and timesteps. A resumed run re-derives them from the step it continues at, so resuming is exact
/// by construction and no generator state has to be saved. Seeds are mixed with SplitMix64 (Steele et al. 2014), so
/// neighbouring indices give unrelated streams.
/// </summary>
public static class SeedStreams
{
    public const ulong EpochOrder = 0x0E90C401;
    public const ulong Crop = 0xC409;
    public const ulong CaptionDropout = 0xCA97104;
    public const ulong StepNoise = 0x5EED;
    public const ulong Preview = 0x94E71E3;

    /// <summary>A 63-bit seed for (seed, stream, index): non-negative, so it is also a valid torch seed.</summary>
    public static long Derive(long seed, ulong stream, long index)
    {
        ulong x = SplitMix((ulong)seed ^ SplitMix(stream));
        x = SplitMix(x ^ (ulong)index);
        return (long)(x >> 1);
    }

    /// <summary>A CPU torch generator seeded from (seed, stream, index).</summary>
    public static torch.Generator Generator(long seed, ulong stream, long index) =>
        new((ulong)Derive(seed, stream, index), torch.CPU);

    /// <summary>A uniform double in [0, 1) from (seed, stream, index).</summary>
    public static double Uniform(long seed, ulong stream, long index) =>
        (Derive(seed, stream, index) >> 10) * (1.0 / (1L << 53));

    /// <summary>A uniform integer in [0, n) from (seed, stream, index) (n ≥ 1; the modulo bias is below 2^-40).</summary>
    public static int Below(int n, long seed, ulong stream, long index)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n));
        return (int)((ulong)Derive(seed, stream, index) % (ulong)n);
    }

    private static ulong SplitMix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
