using static TorchSharp.torch;

namespace SelfCascade.Cascade;

/// <summary>
/// Tiled VAE decode and encode over plain delegates, so any AutoencoderKL (or a test network) plugs in.
/// The input is cut into overlapping tiles, each tile runs through the delegate on its own inside a dispose scope,
/// and the outputs are blended as diffusers' <c>tiled_decode</c>/<c>tiled_encode</c> blend them (the default,
/// <see cref="VaeTileLayout.Diffusers"/>) or with this project's even layout (<see cref="VaeTileLayout.Even"/>,
/// <see cref="TileLayout"/>). Peak memory is one tile's decode/encode plus the output (and the input), as diffusers'
/// <c>enable_tiling</c> intends.
/// The result is not bit-identical to an untiled pass unless one tile covers the input (then the delegate runs once on
/// the whole input): the SD VAE has a global mid-block attention and a wide receptive field, so tiles see less
/// context — the same trade diffusers makes.
/// </summary>
public static class TiledVae
{
    /// <summary>
    /// Decodes (B, C, h, w) latents to (B, C', h·f, w·f) images with f = <see cref="TiledVaeOptions.ScaleFactor"/>.
    /// With the default <see cref="VaeTileLayout.Diffusers"/> layout this is diffusers' <c>AutoencoderKL.tiled_decode</c>
    /// (tests/reference/tiled-vae); <see cref="VaeTileLayout.Even"/> is this project's own blend (<see cref="TileLayout"/>).
    /// </summary>
    public static Tensor Decode(Func<Tensor, Tensor> decode, Tensor latent, TiledVaeOptions? options = null)
    {
        options ??= new TiledVaeOptions();
        options.Validate();
        CheckInput(latent, "latent");
        return Run(decode, latent, latent.shape[2], latent.shape[3], options, inScale: 1, outScale: options.ScaleFactor);
    }

    /// <summary>
    /// Encodes (B, 3, H, W) images (H, W multiples of f) to the encoder's (B, C, H/f, W/f) output — the latent
    /// distribution's moments (mean and log-variance, as diffusers' <c>_tiled_encode</c> blends them) or latents.
    /// Tiles are <see cref="TiledVaeOptions.TileSampleSize"/> pixels with the same overlap as decode.
    /// </summary>
    public static Tensor Encode(Func<Tensor, Tensor> encodeMoments, Tensor image, TiledVaeOptions? options = null)
    {
        options ??= new TiledVaeOptions();
        options.Validate();
        CheckInput(image, "image");
        long f = options.ScaleFactor;
        if (image.shape[2] % f != 0 || image.shape[3] % f != 0)
            throw new ArgumentException($"image {image.shape[3]}x{image.shape[2]} is not a multiple of the VAE scale factor {f}");
        return Run(encodeMoments, image, image.shape[2] / f, image.shape[3] / f, options, inScale: f, outScale: 1);
    }

    /// <summary>
    /// Whether to tile a decode of an h×w latent. Off: never; On: always; Auto: when the image has more than
    /// <see cref="TiledVaeOptions.AutoTilePixels"/> pixels, or when <paramref name="memoryBudgetBytes"/> is given and the
    /// untiled estimate (<see cref="VaeMemoryEstimate"/>) exceeds it. Never when one tile covers the image (tiling
    /// would change nothing).
    /// </summary>
    public static bool ShouldTile(VaeTiling policy, long latentHeight, long latentWidth, TiledVaeOptions? options = null,
        int batch = 1, long? memoryBudgetBytes = null, int bytesPerElement = 2)
    {
        options ??= new TiledVaeOptions();
        if (latentHeight <= options.TileLatentSize && latentWidth <= options.TileLatentSize) return false;
        long h = latentHeight * options.ScaleFactor, w = latentWidth * options.ScaleFactor;
        return policy switch
        {
            VaeTiling.Off => false,
            VaeTiling.On => true,
            _ => h * w > options.AutoTilePixels
                 || (memoryBudgetBytes is long budget && VaeMemoryEstimate.UntiledDecodeBytes(h, w, batch, bytesPerElement) > budget),
        };
    }

    /// <summary>Decodes tiled or whole according to <paramref name="policy"/>.</summary>
    public static Tensor DecodeWithPolicy(Func<Tensor, Tensor> decode, Tensor latent, VaeTiling policy, TiledVaeOptions? options = null, long? memoryBudgetBytes = null)
    {
        options ??= new TiledVaeOptions();
        bool tile = ShouldTile(policy, latent.shape[2], latent.shape[3], options, (int)latent.shape[0], memoryBudgetBytes, (int)latent.ElementSize);
        return tile ? Decode(decode, latent, options) : decode(latent);
    }

    private static void CheckInput(Tensor x, string what)
    {
        if (x.dim() != 4) throw new ArgumentException($"{what} must be (B, C, H, W), got [{string.Join(",", x.shape)}]");
    }

    /// <summary>
    /// The shared loop. Tiles are laid out on the coarse (latent) grid of <paramref name="gridH"/>×<paramref name="gridW"/>;
    /// the input is that grid × <paramref name="inScale"/>, the output that grid × <paramref name="outScale"/>.
    /// </summary>
    private static Tensor Run(Func<Tensor, Tensor> fn, Tensor input, long gridH, long gridW, TiledVaeOptions options, long inScale, long outScale)
        => options.Layout == VaeTileLayout.Diffusers
            ? RunDiffusers(fn, input, gridH, gridW, options, inScale, outScale)
            : RunEven(fn, input, gridH, gridW, options, inScale, outScale);

    /// <summary>
    /// diffusers' <c>tiled_decode</c>/<c>tiled_encode</c>, streamed: tile (i, j) is blended in place with the bottom rows
    /// of the already blended tile above it (<c>blend_v</c>), then with the right columns of the already blended tile
    /// to its left (<c>blend_h</c>), and its first <c>row_limit</c> rows and columns go into the output. diffusers keeps
    /// every decoded tile; only those strips are needed, so peak memory is one tile plus one row of strips plus the output.
    /// Half-precision tiles are blended in fp32 (diffusers blends in the tile's dtype).
    /// </summary>
    private static Tensor RunDiffusers(Func<Tensor, Tensor> fn, Tensor input, long gridH, long gridW, TiledVaeOptions options, long inScale, long outScale)
    {
        long tile = options.TileLatentSize;
        if (gridH <= tile && gridW <= tile) return fn(input); // diffusers tiles only when a side exceeds the tile
        var g = TileLayout.DiffusersGeometry(tile, options.OverlapFactor, inScale, outScale);
        var rows = TileLayout.DiffusersSpans(gridH, tile, g.Stride);
        var cols = TileLayout.DiffusersSpans(gridW, tile, g.Stride);
        Tensor? output = null;
        ScalarType resultType = input.dtype;
        var above = new Tensor?[cols.Count]; // bottom rows of the previous row's blended tiles
        var below = new Tensor?[cols.Count];
        Tensor? left = null;                  // right columns of the previous blended tile in this row
        try
        {
            for (int i = 0; i < rows.Count; i++)
            {
                for (int j = 0; j < cols.Count; j++)
                {
                    using var scope = NewDisposeScope();
                    var piece = input.narrow(2, rows[i].Start * inScale, rows[i].Size * inScale)
                                     .narrow(3, cols[j].Start * inScale, cols[j].Size * inScale);
                    var result = fn(piece);
                    CheckTileOutput(result, input.shape[0], rows[i].Size * outScale, cols[j].Size * outScale);
                    if (output is null)
                    {
                        resultType = result.dtype;
                        output = empty([result.shape[0], result.shape[1], gridH * outScale, gridW * outScale], AccumulationType(result.dtype), result.device)
                            .MoveToOuterDisposeScope();
                    }
                    // A private copy to blend in place (the delegate's tensor is not ours to change).
                    var t = result.dtype == output.dtype ? result.clone() : result.to(output.dtype);
                    if (i > 0) BlendInPlace(above[j]!, t, g.Blend, dim: 2);
                    if (j > 0) BlendInPlace(left!, t, g.Blend, dim: 3);
                    long h = t.shape[2], w = t.shape[3];
                    below[j]?.Dispose();
                    below[j] = t.narrow(2, h - Math.Min(h, g.Blend), Math.Min(h, g.Blend)).clone().DetachFromDisposeScope();
                    left?.Dispose();
                    left = t.narrow(3, w - Math.Min(w, g.Blend), Math.Min(w, g.Blend)).clone().DetachFromDisposeScope();
                    long kh = Math.Min(g.Keep, h), kw = Math.Min(g.Keep, w);
                    output.narrow(2, rows[i].Start * outScale, kh).narrow(3, cols[j].Start * outScale, kw)
                          .copy_(t.narrow(2, 0, kh).narrow(3, 0, kw));
                }
                left?.Dispose();
                left = null;
                (above, below) = (below, above);
            }
            if (output!.dtype == resultType) return output;
            var cast = output.to(resultType);
            output.Dispose();
            return cast;
        }
        catch
        {
            output?.Dispose();
            throw;
        }
        finally
        {
            left?.Dispose();
            foreach (var s in above) s?.Dispose();
            foreach (var s in below) s?.Dispose();
        }
    }

    /// <summary>
    /// diffusers' <c>blend_v</c> (dim 2) / <c>blend_h</c> (dim 3): with e = min(|a|, |b|, extent) along the axis,
    /// <c>b[y] = a[-e + y] · (1 - y/e) + b[y] · (y/e)</c> for y = 0..e-1. <paramref name="a"/> holds the last
    /// min(|a|, extent) samples of the neighbouring tile, which is all the rule reads of it.
    /// </summary>
    private static void BlendInPlace(Tensor a, Tensor b, long extent, int dim)
    {
        long e = Math.Min(Math.Min(a.shape[dim], b.shape[dim]), extent);
        if (e == 0) return;
        using var scope = NewDisposeScope();
        // The weights as diffusers' Python floats, rounded to the tile's dtype as torch does with a scalar factor.
        var wb = new float[e];
        var wa = new float[e];
        for (long y = 0; y < e; y++) { wb[y] = (float)((double)y / e); wa[y] = (float)(1 - (double)y / e); }
        long[] shape = dim == 2 ? [1, 1, e, 1] : [1, 1, 1, e];
        var tb = tensor(wb, b.dtype, b.device).view(shape);
        var ta = tensor(wa, b.dtype, b.device).view(shape);
        var bPart = b.narrow(dim, 0, e);
        bPart.copy_(a.narrow(dim, a.shape[dim] - e, e) * ta + bPart * tb);
    }

    /// <summary>The <see cref="VaeTileLayout.Even"/> layout: evenly spread full tiles, weights that sum to 1.</summary>
    private static Tensor RunEven(Func<Tensor, Tensor> fn, Tensor input, long gridH, long gridW, TiledVaeOptions options, long inScale, long outScale)
    {
        var rows = TileLayout.Spans(gridH, options.TileLatentSize, options.OverlapLatent);
        var cols = TileLayout.Spans(gridW, options.TileLatentSize, options.OverlapLatent);
        if (rows.Count == 1 && cols.Count == 1) return fn(input);

        var rowWeights = TileLayout.Weights(rows, outScale, options.Blend, options.EdgeMargin);
        var colWeights = TileLayout.Weights(cols, outScale, options.Blend, options.EdgeMargin);
        Tensor? output = null;
        ScalarType resultType = input.dtype;
        try
        {
            for (int i = 0; i < rows.Count; i++)
            for (int j = 0; j < cols.Count; j++)
            {
                using var scope = NewDisposeScope();
                var piece = input.narrow(2, rows[i].Start * inScale, rows[i].Size * inScale)
                                 .narrow(3, cols[j].Start * inScale, cols[j].Size * inScale);
                var result = fn(piece);
                CheckTileOutput(result, input.shape[0], rows[i].Size * outScale, cols[j].Size * outScale);
                if (output is null)
                {
                    resultType = result.dtype;
                    output = zeros([result.shape[0], result.shape[1], gridH * outScale, gridW * outScale], AccumulationType(result.dtype), result.device)
                        .MoveToOuterDisposeScope();
                }
                var wy = tensor(rowWeights[i], output.dtype, result.device).view(1, 1, -1, 1);
                var wx = tensor(colWeights[j], output.dtype, result.device).view(1, 1, 1, -1);
                output.narrow(2, rows[i].Start * outScale, rows[i].Size * outScale)
                      .narrow(3, cols[j].Start * outScale, cols[j].Size * outScale)
                      .add_(result.to(output.dtype) * (wy * wx));
            }
            if (output!.dtype == resultType) return output;
            var cast = output.to(resultType);
            output.Dispose();
            return cast;
        }
        catch
        {
            output?.Dispose();
            throw;
        }
    }

    /// <summary>Half-precision outputs are blended in fp32 (the sums of weighted tiles would round at each add).</summary>
    private static ScalarType AccumulationType(ScalarType t) => t is ScalarType.Float16 or ScalarType.BFloat16 ? ScalarType.Float32 : t;

    private static void CheckTileOutput(Tensor result, long batch, long h, long w)
    {
        if (result.dim() != 4 || result.shape[0] != batch || result.shape[2] != h || result.shape[3] != w)
            throw new InvalidOperationException(
                $"the tile function returned [{string.Join(",", result.shape)}], expected ({batch}, C, {h}, {w}); is the VAE scale factor right?");
    }
}
