namespace SelfCascade.Cascade;

/// <summary>Small pure formulas the cascade shares with diffusers' img2img and with docs/ARCHITECTURE.md §7/§9.</summary>
public static class CascadeMath
{
    /// <summary>
    /// Denoising steps an img2img stage runs: diffusers <c>StableDiffusionImg2ImgPipeline.get_timesteps</c>,
    /// <c>init_timestep = min(int(num_inference_steps * strength), num_inference_steps)</c>. C#'s double product
    /// and truncating cast give Python's <c>int(float)</c> bit for bit (both IEEE-754, truncation toward zero).
    /// </summary>
    public static int Img2ImgSteps(int steps, double strength) => Math.Min((int)(steps * strength), steps);

    /// <summary>
    /// Index of the first timestep an img2img stage uses (get_timesteps: <c>t_start = max(steps - init_timestep, 0)</c>;
    /// the scheduler's timesteps are then <c>timesteps[t_start * order:]</c>). With 50 leading-spaced DDIM steps and
    /// strength 0.7 this is 15, i.e. t = 681: the paper's re-noising level K = 700 (§3.1, "pivot-guided noise re-schedule").
    /// </summary>
    public static int Img2ImgStartIndex(int steps, double strength) => Math.Max(steps - Img2ImgSteps(steps, strength), 0);

    /// <summary>docs/ARCHITECTURE.md §7: stage r draws its noise from a CPU generator seeded <c>seed + r</c> (the base stage is r = 0).</summary>
    public static long StageSeed(long seed, int stageIndex) => seed + stageIndex;

    /// <summary>
    /// Classifier-free guidance doubles the UNet batch: diffusers' <c>do_classifier_free_guidance = guidance_scale &gt; 1</c>.
    /// </summary>
    public static int CfgBatchMultiplier(double guidanceScale) => guidanceScale > 1.0 ? 2 : 1;

    /// <summary>
    /// Relative cost of one UNet step at <paramref name="pixelRatio"/> = pixels / native pixels, in native-step units:
    /// <c>(1 - a) r + a r^2</c>. The linear part is convolutions/feed-forwards (work per pixel), the quadratic part is
    /// self-attention (tokens squared); <c>a</c> is attention's share of a native step. a = 0 gives the pixel-linear
    /// estimate. Default a = 0.09 fits docs/ARCHITECTURE.md §9's SD 2.1 H200 timings 2048² → 4096² (228 ms → 2.6 s, ×11.4 for ×4
    /// pixels) taken as compute-bound: a linear fit c1 r + c2 r² through them gives c2/(c1+c2) = 0.09 at 512².
    /// </summary>
    public static double StepCost(double pixelRatio, double attentionFraction)
    {
        if (attentionFraction < 0 || attentionFraction > 1) throw new ArgumentOutOfRangeException(nameof(attentionFraction), attentionFraction, "attention share must be in [0, 1]");
        return (1 - attentionFraction) * pixelRatio + attentionFraction * pixelRatio * pixelRatio;
    }

    /// <summary>
    /// Size granularity in pixels: the VAE factor times the UNet's total downsampling, <c>vae * 2^downsamplers</c>
    /// (a latent that is a multiple of <c>2^downsamplers</c> survives every stride-2 conv and its upsample exactly).
    /// SD 1.x/2.x: 8 * 2^3 = 64; SDXL: 8 * 2^2 = 32.
    /// </summary>
    public static int Granularity(int vaeScaleFactor, int downsamplerCount)
    {
        if (vaeScaleFactor < 1) throw new ArgumentOutOfRangeException(nameof(vaeScaleFactor), vaeScaleFactor, "VAE scale factor must be at least 1");
        if (downsamplerCount < 0 || downsamplerCount > 10) throw new ArgumentOutOfRangeException(nameof(downsamplerCount), downsamplerCount, "downsampler count must be in [0, 10]");
        return checked(vaeScaleFactor << downsamplerCount);
    }

    /// <summary>
    /// Granularity from the UNet config's <c>down_block_types</c> count: diffusers gives every down block but the last a
    /// downsampler (<c>add_downsample = not is_final_block</c>), so downsamplers = count - 1.
    /// </summary>
    public static int GranularityFromDownBlocks(int vaeScaleFactor, int downBlockCount)
    {
        if (downBlockCount < 1) throw new ArgumentOutOfRangeException(nameof(downBlockCount), downBlockCount, "a UNet has at least one down block");
        return Granularity(vaeScaleFactor, downBlockCount - 1);
    }
}
