namespace SelfCascade.Training;

/// <summary>
/// The order in which samples are drawn: sample k of the run (counting from 0 across epochs) is item
/// <c>perm_e[k mod n]</c> of epoch <c>e = k / n</c>, where each epoch's permutation comes from a generator seeded by
/// (seed, epoch). A run resumed at step s continues at sample s × batch × accumulation with the same order.
/// </summary>
public sealed class DataOrder(int count, long seed, bool shuffle = true)
{
    private long _cachedEpoch = -1;
    private int[] _cached = [];

    public int Count { get; } = count > 0 ? count : throw new ArgumentOutOfRangeException(nameof(count), "the dataset is empty");

    /// <summary>The dataset index of the run's k-th sample.</summary>
    public int this[long k]
    {
        get
        {
            if (k < 0) throw new ArgumentOutOfRangeException(nameof(k));
            long epoch = k / Count;
            return Epoch(epoch)[(int)(k % Count)];
        }
    }

    /// <summary>The permutation of one epoch (identity without shuffling): Fisher-Yates from the seeded stream.</summary>
    public int[] Epoch(long epoch)
    {
        if (epoch == _cachedEpoch) return _cached;
        var perm = Enumerable.Range(0, Count).ToArray();
        if (shuffle)
        {
            long epochSeed = SeedStreams.Derive(seed, SeedStreams.EpochOrder, epoch);
            for (int i = Count - 1; i > 0; i--)
            {
                int j = SeedStreams.Below(i + 1, epochSeed, SeedStreams.EpochOrder, i);
                (perm[i], perm[j]) = (perm[j], perm[i]);
            }
        }
        _cachedEpoch = epoch;
        _cached = perm;
        return perm;
    }
}
