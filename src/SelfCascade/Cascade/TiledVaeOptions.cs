namespace SelfCascade.Cascade;

/// <summary>When the VAE decodes/encodes in tiles.</summary>
public enum VaeTiling
{
    /// <summary>Tile when the image is larger than <see cref="TiledVaeOptions.AutoTilePixels"/> or the untiled estimate exceeds the memory budget.</summary>
    Auto,
    /// <summary>Always tile (an image that one tile covers is still processed in one piece, exactly as untiled).</summary>
    On,
    /// <summary>Never tile.</summary>
    Off,
}

/// <summary>
/// Tiling parameters, defaults as diffusers' <c>AutoencoderKL.enable_tiling()</c>: <c>tile_sample_min_size</c> = 512 px
/// (the SD VAE config's sample_size), <c>tile_overlap_factor</c> = 0.25, so 64-latent tiles overlapping by 16 latents
/// (128 px), i.e. a stride of 48 latents, as diffusers' <c>overlap_size = int(tile_latent_min_size * (1 - 0.25))</c>.
/// </summary>
public sealed record TiledVaeOptions
{
    /// <summary>Tile edge in image pixels (diffusers tile_sample_min_size); the latent tile is this / ScaleFactor.</summary>
    public int TileSampleSize { get; init; } = 512;

    /// <summary>Fraction of a tile shared with its neighbour (diffusers tile_overlap_factor), in [0, 0.5].</summary>
    public double OverlapFactor { get; init; } = 0.25;

    /// <summary>VAE scale factor f: the decoder maps h×w latents to (h·f)×(w·f) images (8 for SD/SDXL: 2^(len(block_out_channels)-1)).</summary>
    public int ScaleFactor { get; init; } = 8;

    /// <summary>Cross-fade profile across overlaps (smoothstep; linear is diffusers' profile).</summary>
    public TileBlend Blend { get; init; } = TileBlend.Smoothstep;

    /// <summary>
    /// Fraction of each overlap, at each end, where a tile gets zero weight (the part nearest its own border, where its
    /// convolutions saw zero padding instead of neighbours). 0.125 of the default 128-px overlap = 16 px; the
    /// cross-fade then spans the middle 96 px. In [0, 0.5).
    /// </summary>
    public double EdgeMargin { get; init; } = 0.125;

    /// <summary>
    /// Auto policy threshold: tile when the image has more pixels than this. 1024² keeps every native-size decode
    /// (SD 512/768, SDXL 1024) untiled, hence identical to diffusers, and tiles the cascade's larger stages, where
    /// an untiled SD VAE decode needs ~9.7 GiB at 2048² and ~38 GiB at 4096² (docs/ARCHITECTURE.md §9).
    /// </summary>
    public long AutoTilePixels { get; init; } = 1024L * 1024;

    /// <summary>Tile edge in latent pixels.</summary>
    public int TileLatentSize => TileSampleSize / ScaleFactor;

    /// <summary>Overlap in latent pixels (diffusers: blend_extent = int(tile_latent_min_size * overlap) for encode, ×f for decode).</summary>
    public int OverlapLatent => (int)(TileLatentSize * OverlapFactor);

    /// <summary>Throws ArgumentException naming the bad value.</summary>
    public void Validate()
    {
        if (ScaleFactor < 1) throw new ArgumentException($"VAE scale factor {ScaleFactor} must be at least 1");
        if (TileSampleSize < ScaleFactor || TileSampleSize % ScaleFactor != 0)
            throw new ArgumentException($"tile size {TileSampleSize} px must be a positive multiple of the VAE scale factor {ScaleFactor}");
        if (!(OverlapFactor >= 0 && OverlapFactor <= 0.5))
            throw new ArgumentException($"tile overlap factor {OverlapFactor} must be in [0, 0.5]");
        if (!(EdgeMargin >= 0 && EdgeMargin < 0.5))
            throw new ArgumentException($"tile edge margin {EdgeMargin} must be in [0, 0.5)");
        if (AutoTilePixels < 1) throw new ArgumentException($"auto-tiling threshold {AutoTilePixels} pixels must be positive");
    }
}
