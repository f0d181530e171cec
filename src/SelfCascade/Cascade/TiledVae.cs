using static TorchSharp.torch;

namespace SelfCascade.Cascade;

/// <summary>
/// Tiled VAE decode and encode over plain delegates, so any AutoencoderKL (or a test network) plugs in.
/// The input is cut into overlapping tiles (<see cref="TileLayout"/>), each tile runs through the delegate on its own
/// inside a dispose scope, and its output is added into the result with separable blend weights that sum to 1.
/// Peak memory is one tile's decode/encode plus the output (and the input), as diffusers' <c>enable_tiling</c> intends.
/// The result is not bit-identical to an untiled pass unless one tile covers the input (then the delegate runs once on
/// the whole input): the SD VAE has a global mid-block attention and a wide receptive field, so tiles see less
/// context — the same trade diffusers makes.
/// </summary>
public static class TiledVae
{
    /// <summary>
    /// Decodes (B, C, h, w) latents to (B, C', h·f, w·f) images with f = <see cref="TiledVaeOptions.ScaleFactor"/>.
    /// Matches diffusers' <c>AutoencoderKL.tiled_decode</c> in purpose and defaults (see <see cref="TileLayout"/> for the
    /// blending, which differs: full tiles spread evenly, weights that sum to 1).
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
