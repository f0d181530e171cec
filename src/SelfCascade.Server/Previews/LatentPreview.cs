using SelfCascade.Imaging;
using SelfCascade.IO;
using static TorchSharp.torch;

namespace SelfCascade.Server.Previews;

/// <summary>
/// A cheap RGB look at latents mid-denoising, without the VAE: pixel-space models' latents are the image; 4-channel
/// SD latents go through a fixed linear map to RGB (the per-channel factors ComfyUI's latent_formats.py uses for its
/// "latent2rgb" previews, SD1.x/2.x and SDXL), at latent resolution.
/// </summary>
public static class LatentPreview
{
    private static readonly float[,] Sd15 =
    {
        { 0.3512f, 0.2297f, 0.3227f }, { 0.3250f, 0.4974f, 0.2350f }, { -0.2829f, 0.1762f, 0.2721f }, { -0.2120f, -0.2616f, -0.7177f },
    };
    private static readonly float[,] Sdxl =
    {
        { 0.3651f, 0.4232f, 0.4341f }, { -0.2533f, -0.0042f, 0.1068f }, { 0.1076f, 0.1111f, -0.0362f }, { -0.3165f, -0.2492f, -0.2188f },
    };
    private static readonly float[] SdxlBias = [0.1084f, -0.0175f, -0.0011f];

    /// <summary>Image 0 of a (B, C, h, w) latent batch as RGB.</summary>
    public static RgbImage Render(Tensor latents, int vaeScaleFactor, ModelFamily family)
    {
        using var scope = NewDisposeScope();
        var x = latents[0].detach().to(ScalarType.Float32).cpu();
        long c = x.shape[0];
        if (vaeScaleFactor == 1 && c == 3) return RgbImage.FromDecoderOutput(x);
        if (c == 4)
        {
            bool xl = family == ModelFamily.StableDiffusionXL;
            var factors = xl ? Sdxl : Sd15;
            var m = tensor(Flatten(factors), [4, 3]);
            var rgb = einsum("chw,cr->rhw", x, m);
            if (xl) rgb = rgb + tensor(SdxlBias).reshape(3, 1, 1);
            return RgbImage.FromDecoderOutput(rgb);
        }
        // Any other layout: the mean over channels as grey, min-max normalised.
        var g = x.mean([0L], keepdim: true);
        var unit = (g - g.min()) / (g.max() - g.min() + 1e-6);
        return RgbImage.FromUnitTensor(unit.expand(3, -1, -1));
    }

    private static float[] Flatten(float[,] a)
    {
        var r = new float[a.Length];
        Buffer.BlockCopy(a, 0, r, 0, r.Length * sizeof(float));
        return r;
    }
}
