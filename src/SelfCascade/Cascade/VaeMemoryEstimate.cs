namespace SelfCascade.Cascade;

/// <summary>
/// Rough peak memory of an SD/SDXL VAE decode. docs/ARCHITECTURE.md §9 measured the SD VAE decode (batch 1, fp16, H200) at
/// 9.7 GiB for 2048² and 38 GiB for 4096²: both ≈ 2.4 KiB of activations per output pixel (the 128-channel
/// full-resolution up block dominates), so the untiled peak is linear in pixels. A tiled decode holds one tile's
/// decode plus the output image (and the latent).
/// </summary>
public static class VaeMemoryEstimate
{
    /// <summary>Decoder activation bytes per output pixel at 2 bytes an element (fp16/bf16), from docs/ARCHITECTURE.md §9.</summary>
    public const double DecodeBytesPerPixelHalf = 9.7 * (1L << 30) / (2048.0 * 2048.0);

    /// <summary>Peak bytes of one untiled decode of a batch of <paramref name="height"/>×<paramref name="width"/> images.</summary>
    public static long UntiledDecodeBytes(long height, long width, int batch = 1, int bytesPerElement = 2)
        => (long)(DecodeBytesPerPixelHalf * bytesPerElement / 2.0 * height * width * batch);

    /// <summary>Peak bytes of a tiled decode: one tile's decode (largest tile) + the output image + the latent (4 channels).</summary>
    public static long TiledDecodeBytes(long height, long width, TiledVaeOptions options, int batch = 1, int bytesPerElement = 2, int latentChannels = 4)
    {
        long tile = options.TileSampleSize;
        long tileBytes = UntiledDecodeBytes(Math.Min(tile, height), Math.Min(tile, width), batch, bytesPerElement);
        // The blend accumulates in fp32 when the decoder runs in a half type (TiledVae), so count 4 bytes.
        long outputBytes = 3L * height * width * batch * Math.Max(bytesPerElement, 4);
        long latentBytes = (long)latentChannels * (height / options.ScaleFactor) * (width / options.ScaleFactor) * batch * bytesPerElement;
        return tileBytes + outputBytes + latentBytes;
    }
}
