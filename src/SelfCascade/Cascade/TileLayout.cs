namespace SelfCascade.Cascade;

/// <summary>One tile along one axis: <c>[Start, Start + Size)</c>.</summary>
public readonly record struct TileSpan(long Start, long Size)
{
    public long End => Start + Size;
}

/// <summary>
/// Where tiles go along one axis and how their outputs blend (pure, no tensors): diffusers' numbers for the default
/// layout (DiffusersSpans, DiffusersGeometry), and Spans/Weights for the optional Even layout.
/// How the Even layout differs from diffusers' <c>AutoencoderKL.tiled_decode</c>, and why:
/// <list type="bullet">
/// <item>diffusers steps by <c>tile - overlap</c> from 0 and lets the last tiles run short (down to a sliver that sees
/// little context); here every tile is full size and the tiles are spread evenly, <c>n = ceil((L - o) / (t - o))</c>,
/// <c>start_i = round(i (L - t) / (n - 1))</c>, so each overlap is at least <c>o</c>.</item>
/// <item>diffusers blends with <c>blend_v/blend_h</c>: across an overlap of e rows, row y takes
/// <c>a·(1 - y/e) + b·y/e</c>, sequentially, then crops; weights start at exactly 0 for the new tile and stop short of 1.
/// Here each tile gets a separable weight: 1 inside, and a cross-fade r(t) across each of its actual overlaps, sampled
/// at pixel centres t = (k + ½)/e (<see cref="TileBlend"/>: smoothstep by default, linear as diffusers), and the
/// weights are normalised per axis so that, at every output pixel, the weights of all tiles covering it sum to
/// exactly 1. An optional edge margin gives a tile zero weight on the part of the overlap nearest its own border, where
/// it lacks context: a decoder whose receptive field fits in the margin is then reproduced exactly. Where only two
/// tiles overlap the ramps already sum to 1 (the normalisation only matters where three tiles meet); the product of
/// per-axis partitions of unity is a 2-D partition of unity.</item>
/// </list>
/// </summary>
public static class TileLayout
{
    /// <summary>
    /// diffusers' tile starts along one axis: <c>range(0, length, stride)</c>, each tile <c>min(tile, length - start)</c>
    /// long (the last ones may be short; <c>tiled_decode</c>/<c>tiled_encode</c> slice <c>z[i : i + tile]</c>).
    /// </summary>
    public static IReadOnlyList<TileSpan> DiffusersSpans(long length, long tile, long stride)
    {
        if (length < 1) throw new ArgumentOutOfRangeException(nameof(length), length, "length must be positive");
        if (stride < 1 || stride > tile) throw new ArgumentOutOfRangeException(nameof(stride), stride, $"stride must be in [1, {tile}]");
        var spans = new List<TileSpan>();
        for (long start = 0; start < length; start += stride) spans.Add(new TileSpan(start, Math.Min(tile, length - start)));
        return spans;
    }

    /// <summary>
    /// diffusers' tiling numbers for tiles of <paramref name="tile"/> coarse (latent) samples, <paramref name="outScale"/>
    /// output samples per coarse sample (f for decode, 1 for encode) and <paramref name="inScale"/> input samples per
    /// coarse sample (1 for decode, f for encode):
    /// decode: <c>overlap_size = int(tile_latent_min_size * (1 - overlap))</c> latents, <c>blend_extent =
    /// int(tile_sample_min_size * overlap)</c> px, <c>row_limit = tile_sample_min_size - blend_extent</c> px;
    /// encode: <c>overlap_size = int(tile_sample_min_size * (1 - overlap))</c> px, <c>blend_extent =
    /// int(tile_latent_min_size * overlap)</c> latents, <c>row_limit = tile_latent_min_size - blend_extent</c>.
    /// Throws when diffusers' own numbers do not fit together (the kept part of a tile is not exactly one stride, or
    /// an encode stride is not a whole number of latents): diffusers would return an image of the wrong size then.
    /// </summary>
    public static DiffusersTiling DiffusersGeometry(long tile, double overlapFactor, long inScale, long outScale)
    {
        long strideIn = (long)(tile * inScale * (1 - overlapFactor));
        if (strideIn % inScale != 0)
            throw new ArgumentException($"diffusers' tile stride of {strideIn} input samples is not a whole number of latents (x{inScale}); choose a tile size whose 3/4 is a multiple of {inScale}");
        long stride = strideIn / inScale;
        long blend = (long)(tile * outScale * overlapFactor);
        long keep = tile * outScale - blend;
        if (stride < 1 || keep != stride * outScale)
            throw new ArgumentException($"diffusers' tiling of {tile}-latent tiles with overlap {overlapFactor} keeps {keep} samples per tile but steps by {stride * outScale}; choose a tile size whose overlap is a whole number of latents");
        return new DiffusersTiling(stride, blend, keep);
    }

    /// <summary>Tile spans covering <c>[0, length)</c> with tiles of <paramref name="tile"/> overlapping by at least <paramref name="overlap"/>.</summary>
    public static IReadOnlyList<TileSpan> Spans(long length, long tile, long overlap)
    {
        if (length < 1) throw new ArgumentOutOfRangeException(nameof(length), length, "length must be positive");
        if (tile < 1) throw new ArgumentOutOfRangeException(nameof(tile), tile, "tile must be positive");
        if (overlap < 0 || overlap >= tile) throw new ArgumentOutOfRangeException(nameof(overlap), overlap, $"overlap must be in [0, {tile})");
        if (length <= tile) return [new TileSpan(0, length)];
        long stride = tile - overlap;
        long n = (length - overlap + stride - 1) / stride;
        var spans = new TileSpan[n];
        for (long i = 0; i < n; i++)
            spans[i] = new TileSpan((long)Math.Round((double)i * (length - tile) / (n - 1), MidpointRounding.AwayFromZero), tile);
        return spans;
    }

    /// <summary>
    /// Per-tile blend weights along one axis in output units (<paramref name="scale"/> output samples per input sample:
    /// f for decode, 1 for encode). Entry i has length <c>spans[i].Size * scale</c>; at each output position the
    /// weights of the tiles covering it sum to 1.
    /// </summary>
    public static double[][] Weights(IReadOnlyList<TileSpan> spans, long scale, TileBlend blend = TileBlend.Smoothstep, double edgeMargin = 0)
    {
        if (!(edgeMargin >= 0 && edgeMargin < 0.5)) throw new ArgumentOutOfRangeException(nameof(edgeMargin), edgeMargin, "edge margin must be in [0, 0.5)");
        // Where three tiles meet, margins could leave a pixel with no weight at all: fall back to plain ramps then.
        return TryWeights(spans, scale, blend, edgeMargin) ?? TryWeights(spans, scale, blend, 0)!;
    }

    private static double[][]? TryWeights(IReadOnlyList<TileSpan> spans, long scale, TileBlend blend, double edgeMargin)
    {
        if (scale < 1) throw new ArgumentOutOfRangeException(nameof(scale), scale, "scale must be positive");
        int n = spans.Count;
        var raw = new double[n][];
        long total = spans.Max(s => s.End) * scale;
        var sum = new double[total];
        for (int i = 0; i < n; i++)
        {
            long start = spans[i].Start * scale, end = spans[i].End * scale;
            long rampIn = i > 0 ? Math.Max(0, spans[i - 1].End * scale - start) : 0;
            long rampOut = i < n - 1 ? Math.Max(0, end - spans[i + 1].Start * scale) : 0;
            raw[i] = new double[end - start];
            for (long k = 0; k < end - start; k++)
            {
                double w = 1.0;
                if (k < rampIn) w = Math.Min(w, Fade(k, rampIn, blend, edgeMargin));
                if (end - start - k <= rampOut) w = Math.Min(w, Fade(end - start - 1 - k, rampOut, blend, edgeMargin));
                raw[i][k] = w;
                sum[start + k] += w;
            }
        }
        if (sum.Any(v => v <= 0)) return null;
        for (int i = 0; i < n; i++)
        {
            long start = spans[i].Start * scale;
            for (long k = 0; k < raw[i].Length; k++) raw[i][k] /= sum[start + k];
        }
        return raw;
    }

    /// <summary>
    /// Weight of sample k (counted from the tile's edge) in an overlap of e samples: 0 inside the edge margin
    /// m = floor(e · margin), then r(t) with t = (k - m + ½)/(e - 2m), then 1. Sample k of one tile is sample
    /// e - 1 - k of its neighbour, whose t is 1 - t, so the two sum to 1.
    /// </summary>
    private static double Fade(long k, long e, TileBlend blend, double edgeMargin)
    {
        long m = (long)Math.Floor(e * edgeMargin);
        if (k < m) return 0;
        if (k >= e - m) return 1;
        return Ramp((k - m + 0.5) / (e - 2 * m), blend);
    }

    /// <summary>Cross-fade profile on t in (0, 1); both satisfy r(t) + r(1 - t) = 1, so two overlapping tiles sum to 1.</summary>
    public static double Ramp(double t, TileBlend blend) => blend switch
    {
        TileBlend.Linear => t,
        TileBlend.Smoothstep => t * t * (3 - 2 * t),
        _ => throw new ArgumentOutOfRangeException(nameof(blend), blend, "unknown blend"),
    };
}

/// <summary>
/// diffusers' tiling numbers: <see cref="Stride"/> in coarse (latent) samples, <see cref="Blend"/> (blend_extent) and
/// <see cref="Keep"/> (row_limit) in output samples.
/// </summary>
public readonly record struct DiffusersTiling(long Stride, long Blend, long Keep);

/// <summary>Where tiles go and how they blend.</summary>
public enum VaeTileLayout
{
    /// <summary>
    /// diffusers' <c>AutoencoderKL.tiled_decode</c>/<c>tiled_encode</c> exactly (default): tiles every
    /// <c>int(tile·0.75)</c> latents from 0 (the last ones may be short), each tile blended in place with the already
    /// blended tile above (<c>blend_v</c>) and then the one to its left (<c>blend_h</c>) by a linear ramp
    /// <c>a·(1 - y/e) + b·y/e</c>, y = 0..e-1, and cropped to <c>row_limit</c>. A tiled decode is then the image
    /// diffusers' <c>vae.enable_tiling()</c> gives.
    /// </summary>
    Diffusers,
    /// <summary>
    /// This project's own layout (<see cref="TileLayout.Spans"/>, <see cref="TileLayout.Weights"/>): full tiles spread
    /// evenly, per-pixel weights that sum to exactly 1 (smoothstep by default, with an edge margin). Not diffusers'
    /// image; bounded against the untiled decode by tests instead.
    /// </summary>
    Even,
}

/// <summary>How overlapping tiles cross-fade (the <see cref="VaeTileLayout.Even"/> layout).</summary>
public enum TileBlend
{
    /// <summary>
    /// Smoothstep 3t² - 2t³ (default): zero slope at both ends, so a tile's own edge — where it lacks context and is
    /// least right — gets weight O(t²) instead of O(t); measured on a conv decoder, the excess gradient in overlaps
    /// drops several-fold against the linear ramp.
    /// </summary>
    Smoothstep,
    /// <summary>Linear cross-fade, the profile of diffusers' blend_h/blend_v.</summary>
    Linear,
}
