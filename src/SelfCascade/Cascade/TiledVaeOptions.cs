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
/// (the SD 1.5 VAE config's sample_size; the pipeline uses its own VAE's), <c>tile_overlap_factor</c> = 0.25, so
/// 64-latent tiles overlapping by 16 latents (128 px), i.e. a stride of 48 latents, as diffusers'
/// <c>overlap_size = int(tile_latent_min_size * (1 - 0.25))</c>, and diffusers' blend (<see cref="Layout"/>).
/// </summary>
public sealed record TiledVaeOptions
{
    /// <summary>
    /// Tile edge in image pixels (diffusers tile_sample_min_size); the latent tile is this / ScaleFactor. diffusers
    /// takes it from the VAE config's sample_size; the pipeline does the same when it is given no options.
    /// </summary>
    public int TileSampleSize { get; init; } = DefaultTileSampleSize;

    /// <summary>512 px: the SD 1.x/2.x-base VAE's sample_size.</summary>
    public const int DefaultTileSampleSize = 512;

    /// <summary>Fraction of a tile shared with its neighbour (diffusers tile_overlap_factor), in [0, 0.5].</summary>
    public double OverlapFactor { get; init; } = 0.25;

    /// <summary>VAE scale factor f: the decoder maps h×w latents to (h·f)×(w·f) images (8 for SD/SDXL: 2^(len(block_out_channels)-1)).</summary>
    public int ScaleFactor { get; init; } = 8;

    /// <summary>
    /// Where tiles go and how they blend: <see cref="VaeTileLayout.Diffusers"/> (default: diffusers' tiled_decode and
    /// tiled_encode exactly, so a tiled result is diffusers' tiled result) or <see cref="VaeTileLayout.Even"/> (this
    /// project's evenly spread tiles with weights that sum to 1; <see cref="Blend"/> and <see cref="EdgeMargin"/>
    /// apply to it only). docs/TILED_VAE.md compares them.
    /// </summary>
    public VaeTileLayout Layout { get; init; } = VaeTileLayout.Diffusers;

    /// <summary>Cross-fade profile across overlaps in the <see cref="VaeTileLayout.Even"/> layout (smoothstep; linear is diffusers' profile).</summary>
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
        if (Layout == VaeTileLayout.Diffusers)
        {
            TileLayout.DiffusersGeometry(TileLatentSize, OverlapFactor, 1, ScaleFactor); // decode
            TileLayout.DiffusersGeometry(TileLatentSize, OverlapFactor, ScaleFactor, 1); // encode
        }
        else if (!Enum.IsDefined(Layout)) throw new ArgumentException($"unknown tile layout {Layout}");
        if (AutoTilePixels < 1) throw new ArgumentException($"auto-tiling threshold {AutoTilePixels} pixels must be positive");
    }
}
