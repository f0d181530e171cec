using System.Diagnostics;
using SelfCascade.Cascade;
using SelfCascade.Imaging;
using SelfCascade.Models.Unet;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Pipelines;

/// <summary>
/// Higher-resolution generation with a frozen model (paper §4.1, Algorithm 2): stage 0 samples at the base size from
/// noise; stage r ≥ 1 upsamples stage r-1's clean latent to its size (bilinear, align_corners=false), re-noises it
/// with the scheduler's add_noise at the first timestep img2img with the pivot strength would start from (noise from a
/// CPU generator seeded seed + r), and denoises the remaining steps, exactly as diffusers' img2img pipeline does on a
/// latent input. Also runs the baselines it is compared with.
/// </summary>
public static class CascadeGenerator
{
    /// <summary>The scale plan for a target with the pipeline's native size, granularity and VAE factor.</summary>
    public static ScalePlan Plan(StableDiffusionPipeline pipe, int width, int height, CascadeRequest request) =>
        Plan(ModelGeometry.Of(pipe), width, height, request);

    /// <summary>The scale plan from a model's geometry alone (no weights needed: `selfcascade plan`).</summary>
    public static ScalePlan Plan(ModelGeometry model, int width, int height, CascadeRequest request)
    {
        var r = request.Request;
        var options = new ScalePlanOptions
        {
            NativeSize = model.NativeSize,
            VaeScaleFactor = model.VaeScaleFactor,
            Granularity = CascadeMath.GranularityFromDownBlocks(model.VaeScaleFactor, model.UnetBlocks),
            BaseSize = request.BaseSize,
            Steps = r.Steps,
            Strength = request.PivotStrength ?? model.DefaultPivotStrength,
            GuidanceScale = r.Guidance ?? model.DefaultGuidance,
            StageOverrides = request.StageOverrides,
            Batch = r.NumImages,
            Tiling = request.TileOptions ?? new TiledVaeOptions { TileSampleSize = model.VaeTileSize },
            BytesPerElement = model.BytesPerElement,
            // Working memory at hand: the process's available memory (host RAM; libtorch 0.107 exposes no GPU memory stats).
            MaxLatentBytes = ScalePlanOptions.LatentBudgetFor(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes),
        };
        return ScalePlanner.Plan(new PixelSize(width, height), options);
    }

    /// <summary>
    /// The attn-scale baseline's ratio of generated to training pixels (= token counts at every UNet level): each
    /// self-attention layer with n tokens then scales its logits by sqrt(log n / log(n / ratio)), as the released
    /// Self-Cascade code's ldm/attention.py does (there with the training size fixed at 512²; here the model's native size).
    /// </summary>
    public static double AttentionPixelRatio(int nativeSize, int width, int height) =>
        (double)width * height / ((double)nativeSize * nativeSize);

    public static CascadeResult Generate(StableDiffusionPipeline pipe, CascadeRequest request, IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var r = request.Request;
        StableDiffusionPipeline.ValidateRequest(r);
        int width = r.Width > 0 ? r.Width : pipe.NativeSize, height = r.Height > 0 ? r.Height : pipe.NativeSize;
        pipe.ValidateSize(width, height);
        return request.Method switch
        {
            GenerationMethod.Direct => Direct(pipe, request, width, height, null, progress, cancellationToken),
            GenerationMethod.AttnScale => Direct(pipe, request, width, height,
                new UNetForwardOptions { SelfAttentionEntropyRatio = AttentionPixelRatio(pipe.NativeSize, width, height) },
                progress, cancellationToken),
            GenerationMethod.UpscaleOnly => UpscaleOnly(pipe, request, width, height, progress, cancellationToken),
            _ => SelfCascade(pipe, request, Plan(pipe, width, height, request), progress, cancellationToken),
        };
    }

    private static CascadeResult Direct(StableDiffusionPipeline pipe, CascadeRequest request, int width, int height,
        UNetForwardOptions? options, IProgress<GenerationProgress>? progress, CancellationToken ct)
    {
        var r = request.Request;
        var sw = Stopwatch.StartNew();
        double guidance = r.Guidance ?? pipe.DefaultGuidance;
        using var emb = pipe.EncodePrompt(r.Prompt, r.NegativePrompt, guidance > 1.0);
        double textSeconds = sw.Elapsed.TotalSeconds;
        using var generator = new Generator((ulong)r.Seed);
        pipe.Scheduler.SetTimesteps(r.Steps);
        using var noise = pipe.InitialNoise(generator, r.NumImages, width, height);
        using var sigma = tensor(pipe.Scheduler.InitNoiseSigma, ScalarType.Float32, device: pipe.Device);
        using var start = noise * sigma;
        sw.Restart();
        var latents = pipe.Denoise(start, pipe.Scheduler.Timesteps, emb, guidance, r.NumImages, width, height, generator, options, progress, ct);
        var stage = new StageReport(0, width, height, r.Steps, 1.0, guidance, sw.Elapsed.TotalSeconds);
        return Finish(pipe, request, latents, [stage], [], textSeconds, null, progress, ct);
    }

    private static CascadeResult UpscaleOnly(StableDiffusionPipeline pipe, CascadeRequest request, int width, int height,
        IProgress<GenerationProgress>? progress, CancellationToken ct)
    {
        var plan = Plan(pipe, width, height, request);
        var baseSize = plan.Base.Size;
        var baseRequest = new CascadeRequest
        {
            Request = CopyWithSize(request.Request, baseSize.Width, baseSize.Height), Method = GenerationMethod.Direct,
            VaeTiling = request.VaeTiling, TileOptions = request.TileOptions,
        };
        using var baseResult = Direct(pipe, baseRequest, baseSize.Width, baseSize.Height, null, progress, ct);
        var sw = Stopwatch.StartNew();
        var images = new List<RgbImage>();
        foreach (var img in baseResult.Images)
        {
            using var scope = NewDisposeScope();
            using var t = img.ToTensor();
            // Bicubic in pixel space, the classic "just resize" baseline; values clamped back to [-1, 1].
            var up = nn.functional.interpolate(t, [height, width], mode: InterpolationMode.Bicubic, align_corners: false).clamp(-1, 1);
            images.Add(RgbImage.FromDecoderOutput(up));
        }
        var timings = new Dictionary<string, double>(baseResult.Timings) { ["resize"] = sw.Elapsed.TotalSeconds };
        return new CascadeResult(images, CpuCopy(baseResult.Latents), [.. baseResult.Stages], baseResult.StageImages.ToList(), timings, width, height, plan);
    }

    /// <summary>A detached CPU copy, with no intermediate handle left alive.</summary>
    internal static Tensor CpuCopy(Tensor t)
    {
        using var scope = NewDisposeScope();
        return t.detach().cpu().clone().MoveToOuterDisposeScope();
    }

    private static GenerationRequest CopyWithSize(GenerationRequest r, int width, int height) => new(r.Prompt)
    {
        NegativePrompt = r.NegativePrompt, Seed = r.Seed, Steps = r.Steps, Guidance = r.Guidance, NumImages = r.NumImages,
        Width = width, Height = height,
    };

    private static CascadeResult SelfCascade(StableDiffusionPipeline pipe, CascadeRequest request, ScalePlan plan,
        IProgress<GenerationProgress>? progress, CancellationToken ct)
    {
        var r = request.Request;
        var stages = new List<StageReport>();
        var stageImages = new List<RgbImage>();
        var sw = Stopwatch.StartNew();
        var baseStage = plan.Base;
        bool anyGuidance = plan.Stages.Any(s => s.GuidanceScale > 1.0);
        using var emb = pipe.EncodePrompt(r.Prompt, r.NegativePrompt, anyGuidance);
        using var embNoCfg = anyGuidance && plan.Stages.Any(s => s.GuidanceScale <= 1.0)
            ? new PromptEmbeddings { Positive = emb.Positive.alias(), PooledPositive = emb.PooledPositive?.alias() } : null;
        double textSeconds = sw.Elapsed.TotalSeconds;
        int count = plan.Stages.Count;

        // Stage 0: text-to-image at the base size (seed + 0).
        sw.Restart();
        Tensor latents;
        using (var generator = new Generator((ulong)CascadeMath.StageSeed(r.Seed, 0)))
        {
            pipe.Scheduler.SetTimesteps(baseStage.Steps);
            using var noise = pipe.InitialNoise(generator, r.NumImages, baseStage.Width, baseStage.Height);
            using var sigma = tensor(pipe.Scheduler.InitNoiseSigma, ScalarType.Float32, device: pipe.Device);
            using var start = noise * sigma;
            latents = pipe.Denoise(start, pipe.Scheduler.Timesteps, Pick(emb, embNoCfg, baseStage.GuidanceScale), baseStage.GuidanceScale,
                r.NumImages, baseStage.Width, baseStage.Height, generator, null, progress, ct, 0, count);
        }
        stages.Add(new StageReport(0, baseStage.Width, baseStage.Height, baseStage.DenoisingSteps, 1.0, baseStage.GuidanceScale, sw.Elapsed.TotalSeconds));
        if (request.KeepStageImages) stageImages.AddRange(pipe.DecodeToImages(latents));

        try
        {
            for (int i = 1; i < count; i++)
            {
                ct.ThrowIfCancellationRequested();
                sw.Restart();
                var stage = plan.Stages[i];
                var prev = plan.Stages[i - 1];
                var next = RunStage(pipe, request, latents, prev.Size, stage, Pick(emb, embNoCfg, stage.GuidanceScale),
                    CascadeMath.StageSeed(r.Seed, i), progress, ct, count);
                // The previous stage's tensors go before the next stage allocates more.
                latents.Dispose();
                latents = next;
                stages.Add(new StageReport(i, stage.Width, stage.Height, stage.DenoisingSteps, stage.Strength, stage.GuidanceScale, sw.Elapsed.TotalSeconds));
                if (request.KeepStageImages && i < count - 1) stageImages.AddRange(pipe.DecodeToImages(latents));
            }
            return Finish(pipe, request, latents, stages, stageImages, textSeconds, plan, progress, ct);
        }
        catch
        {
            latents.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Upscales an existing image by 2 or 4 per side (paper §4.1 applied to a given pivot): the image is VAE-encoded
    /// (posterior mean, tiled when large) and used as the pivot of one stage per doubling, stage r seeded seed + r.
    /// Sides that are not multiples of the VAE factor are first resized (bicubic) to the nearest multiple.
    /// </summary>
    public static CascadeResult Upscale(StableDiffusionPipeline pipe, RgbImage image, int scale, CascadeRequest request,
        IProgress<GenerationProgress>? progress = null, CancellationToken ct = default)
    {
        if (scale is not (2 or 4)) throw new ArgumentException($"scale must be 2 or 4 (got {scale})");
        var r = request.Request;
        StableDiffusionPipeline.ValidateRequest(r);
        int f = pipe.VaeScaleFactor;
        int w0 = Math.Max(f, (int)Math.Round(image.Width / (double)f) * f), h0 = Math.Max(f, (int)Math.Round(image.Height / (double)f) * f);
        var sw = Stopwatch.StartNew();
        Tensor latents;
        using (var scope = NewDisposeScope())
        {
            var x = image.ToTensor();
            if (w0 != image.Width || h0 != image.Height)
                x = nn.functional.interpolate(x, [h0, w0], mode: InterpolationMode.Bicubic, align_corners: false).clamp(-1, 1);
            latents = pipe.EncodeImage(x, null, request.VaeTiling, request.TileOptions).MoveToOuterDisposeScope();
        }
        if (r.NumImages > 1)
        {
            var rep = latents.repeat(r.NumImages, 1, 1, 1);
            latents.Dispose();
            latents = rep;
        }
        double encodeSeconds = sw.Elapsed.TotalSeconds;
        int doublings = scale == 2 ? 1 : 2;
        double guidance = r.Guidance ?? pipe.DefaultGuidance;
        var stages = new List<StageReport> { new(0, w0, h0, 0, 0, guidance, encodeSeconds) };
        var stageImages = new List<RgbImage>();
        try
        {
            using var emb = pipe.EncodePrompt(r.Prompt, r.NegativePrompt, guidance > 1.0);
            var prevSize = new PixelSize(w0, h0);
            for (int k = 1; k <= doublings; k++)
            {
                ct.ThrowIfCancellationRequested();
                sw.Restart();
                var o = request.StageOverrides.GetValueOrDefault(k);
                var size = new PixelSize(w0 << k, h0 << k);
                var stage = new ScaleStage(k, size, f, o?.Steps ?? r.Steps, o?.Strength ?? request.PivotStrength ?? pipe.DefaultPivotStrength,
                    o?.GuidanceScale ?? guidance, 2, 2, (double)size.Pixels / ((long)pipe.NativeSize * pipe.NativeSize), 0.09);
                var next = RunStage(pipe, request, latents, prevSize, stage, emb, CascadeMath.StageSeed(r.Seed, k), progress, ct, doublings + 1);
                latents.Dispose();
                latents = next;
                prevSize = size;
                stages.Add(new StageReport(k, size.Width, size.Height, stage.DenoisingSteps, stage.Strength, stage.GuidanceScale, sw.Elapsed.TotalSeconds));
                if (request.KeepStageImages && k < doublings) stageImages.AddRange(pipe.DecodeToImages(latents));
            }
            return Finish(pipe, request, latents, stages, stageImages, 0, null, progress, ct);
        }
        catch
        {
            latents.Dispose();
            throw;
        }
    }

    private static PromptEmbeddings Pick(PromptEmbeddings cfg, PromptEmbeddings? noCfg, double guidance) =>
        guidance > 1.0 || noCfg is null ? cfg : noCfg;

    /// <summary>
    /// One pivot-guided stage (diffusers img2img on a latent input): timesteps = get_timesteps(steps, strength);
    /// z = add_noise(upsample(pivot), randn(seed), timesteps[0]); denoise the remaining steps with the same generator.
    /// </summary>
    public static Tensor RunStage(StableDiffusionPipeline pipe, CascadeRequest request, Tensor previousLatents, PixelSize previousSize,
        ScaleStage stage, PromptEmbeddings emb, long seed, IProgress<GenerationProgress>? progress, CancellationToken ct, int stageCount)
    {
        var r = request.Request;
        using var mode = torch.inference_mode();
        var (timesteps, _) = pipe.Scheduler.GetImg2ImgTimesteps(stage.Steps, stage.Strength);
        if (timesteps.Count == 0)
            throw new ArgumentException($"stage {stage.Index}: {stage.Steps} steps at strength {stage.Strength} leave no step to run");
        using var generator = new Generator((ulong)seed);
        using var pivot = Pivot.Upsample(previousLatents, stage.LatentHeight, stage.LatentWidth, request.PivotMode);
        Tensor noisy;
        using (var scope = NewDisposeScope())
        {
            var noise = randn(pivot.shape, dtype: ScalarType.Float32, generator: generator).to(pipe.Device);
            noisy = pipe.Scheduler.AddNoise(pivot, noise, timesteps[0]).MoveToOuterDisposeScope();
        }
        using var _ = noisy;
        IStageInjection? injection = null;
        // The injector's text states live until the stage ends, as CascadeStageContext promises.
        using var states = request.Injector is null ? null : emb.ForUnet(r.NumImages);
        try
        {
            if (request.Injector is not null)
                injection = request.Injector.BeginStage(new CascadeStageContext(stage.Index, previousLatents, states!,
                    emb.HasGuidance ? 2 : 1, previousSize, stage.Size, pipe.Unet));
            return pipe.Denoise(noisy, timesteps, emb, stage.GuidanceScale, r.NumImages, stage.Width, stage.Height, generator,
                null, progress, ct, stage.Index, stageCount, injection is null ? null : injection.OptionsForStep);
        }
        finally
        {
            injection?.Dispose();
        }
    }

    private static CascadeResult Finish(StableDiffusionPipeline pipe, CascadeRequest request, Tensor latents, List<StageReport> stages,
        List<RgbImage> stageImages, double textSeconds, ScalePlan? plan, IProgress<GenerationProgress>? progress, CancellationToken ct)
    {
        try
        {
            var sw = Stopwatch.StartNew();
            progress?.Report(new GenerationProgress("decode", 0, 1, stages.Count - 1, stages.Count));
            var images = new List<RgbImage>();
            for (int i = 0; i < latents.shape[0]; i++)
            {
                // A cancel during a long multi-image decode stops before the next image (nothing is written yet).
                ct.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                images.Add(RgbImage.FromDecoderOutput(pipe.DecodeLatents(latents[i..(i + 1)], request.VaeTiling, request.TileOptions)));
            }
            var timings = new Dictionary<string, double> { ["text_encode"] = textSeconds };
            foreach (var s in stages) timings[$"stage{s.Index}"] = s.Seconds;
            timings["denoise"] = stages.Sum(s => s.Seconds);
            timings["decode"] = sw.Elapsed.TotalSeconds;
            var last = stages[^1];
            var cpu = CpuCopy(latents);
            return new CascadeResult(images, cpu, stages, stageImages, timings, last.Width, last.Height, plan);
        }
        finally
        {
            latents.Dispose();
        }
    }
}

/// <summary>The final images and latents, each stage's record (and images when kept), timings and the plan.</summary>
public sealed class CascadeResult(List<RgbImage> images, Tensor latents, List<StageReport> stages, List<RgbImage> stageImages,
    Dictionary<string, double> timings, int width, int height, ScalePlan? plan) : IDisposable
{
    public IReadOnlyList<RgbImage> Images { get; } = images;
    public Tensor Latents { get; } = latents;
    public IReadOnlyList<StageReport> Stages { get; } = stages;
    public IReadOnlyList<RgbImage> StageImages { get; } = stageImages;
    public IReadOnlyDictionary<string, double> Timings { get; } = timings;
    public int Width { get; } = width;
    public int Height { get; } = height;
    public ScalePlan? Plan { get; } = plan;
    public void Dispose() => Latents.Dispose();
}
