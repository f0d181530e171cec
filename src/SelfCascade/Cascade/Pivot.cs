using static TorchSharp.torch;

namespace SelfCascade.Cascade;

/// <summary>How the pivot latent is resized.</summary>
public enum PivotResizeMode
{
    /// <summary>torch bilinear, align_corners=False: the paper's and the released code's choice (docs/ARCHITECTURE.md §7).</summary>
    Bilinear,
    /// <summary>torch bicubic (a = -0.75), align_corners=False; sharper but may overshoot the input's range.</summary>
    Bicubic,
}

/// <summary>
/// Pivot resizing (paper §3.1: the clean latent of stage r-1, upsampled, is the pivot that stage r re-noises and
/// denoises). Pure functions of their inputs; no VAE round trip (docs/ARCHITECTURE.md §7).
/// </summary>
public static class Pivot
{
    /// <summary>
    /// <c>torch.nn.functional.interpolate(latent, size=(targetH, targetW), mode, align_corners=False)</c> on a
    /// (B, C, h, w) latent. For an exact integer factor (target = k·input) this equals diffusers' / the released code's
    /// <c>scale_factor=k</c>: with <c>recompute_scale_factor=None</c> PyTorch hands the kernel the scale 1/k, and with
    /// <c>size=</c> it computes input/output = 1/k, the same double, so the source coordinates
    /// <c>(x + 0.5)/k - 0.5</c> are identical (tested bit for bit). For non-integer ratios the explicit size is what the
    /// cascade needs (scale_factor=1.5 on 7 gives floor(10.5)=10 samples but maps with 1/1.5, not 7/10).
    /// </summary>
    public static Tensor Upsample(Tensor latent, long targetHeight, long targetWidth, PivotResizeMode mode = PivotResizeMode.Bilinear)
    {
        CheckLatent(latent, targetHeight, targetWidth);
        if (targetHeight < latent.shape[2] || targetWidth < latent.shape[3])
            throw new ArgumentException($"pivot upsample to {targetWidth}x{targetHeight} is smaller than the latent {latent.shape[3]}x{latent.shape[2]}; use Downsample");
        return nn.functional.interpolate(latent, size: [targetHeight, targetWidth], mode: ToTorch(mode), align_corners: false);
    }

    /// <summary>
    /// Antialiased downsample (for making low-resolution training pairs): <c>interpolate(x, size, mode, align_corners=False,
    /// antialias=True)</c>, PyTorch's PIL-style resampling (the filter support widens by the downscale factor, e.g. taps
    /// [1,3,3,1]/8 for bilinear ×½). TorchSharp 0.107 exposes <c>antialias</c> and libtorch implements it on CPU and CUDA
    /// for bilinear and bicubic, so no box-filter fallback is needed.
    /// </summary>
    public static Tensor Downsample(Tensor x, long targetHeight, long targetWidth, PivotResizeMode mode = PivotResizeMode.Bilinear)
    {
        CheckLatent(x, targetHeight, targetWidth);
        if (targetHeight > x.shape[2] || targetWidth > x.shape[3])
            throw new ArgumentException($"downsample to {targetWidth}x{targetHeight} is larger than the input {x.shape[3]}x{x.shape[2]}; use Upsample");
        return nn.functional.interpolate(x, size: [targetHeight, targetWidth], mode: ToTorch(mode), align_corners: false, antialias: true);
    }

    private static InterpolationMode ToTorch(PivotResizeMode mode) => mode switch
    {
        PivotResizeMode.Bilinear => InterpolationMode.Bilinear,
        PivotResizeMode.Bicubic => InterpolationMode.Bicubic,
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown resize mode"),
    };

    private static void CheckLatent(Tensor x, long h, long w)
    {
        if (x.dim() != 4) throw new ArgumentException($"expected a (B, C, H, W) tensor, got [{string.Join(",", x.shape)}]");
        if (h < 1 || w < 1) throw new ArgumentException($"target size {w}x{h} must be positive");
    }
}
