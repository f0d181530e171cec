using System.Diagnostics;
using SelfCascade.Cascade;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using SelfCascade.Video.Models;
using SelfCascade.Video.Pipelines;
using SelfCascade.Video.Upsamplers;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Video.Cascade;

/// <summary>
/// Higher-resolution video with a frozen video model (the paper's video experiments): the image <see cref="ScalePlan"/>
/// per stage; stage 0 is text-to-video at the base size from noise (seed + 0); stage r ≥ 1 upsamples stage r-1's clean
/// latent frame by frame (bilinear, align_corners=false, each frame on its own), re-noises it with the scheduler's
/// add_noise at the first img2img timestep of the pivot strength — noise randn((B, F, C, H, W)) from a CPU generator
/// seeded seed + r, permuted to (B, C, F, H, W), as diffusers' AnimateDiffVideoToVideoPipeline draws it — and denoises
/// the remaining steps with the same video model; with <see cref="VideoRequest.Upsamplers"/> the stage's image upsampler
/// set runs per frame inside the video UNet (<see cref="VideoUpsamplerStage"/>). Also the baselines: direct, attn-scale,
/// upscale-only.
/// </summary>
public static class VideoCascadeGenerator
{
    /// <summary>The scale plan for a target (the image planner, memory estimates counting every frame).</summary>
    public static ScalePlan Plan(VideoPipeline pipe, int width, int height, VideoRequest request) =>
        CascadeGenerator.Plan(pipe.Geometry, width, height, request.ToCascadeRequest());

    /// <summary>
    /// Generates <see cref="VideoRequest.NumVideos"/> videos of <see cref="VideoRequest.Frames"/> frames at the
    /// target size by <see cref="VideoRequest.Method"/>. Bad input (frames outside 1..max, sizes, steps) fails before
    /// any network runs.
    /// </summary>
    public static VideoResult Generate(VideoPipeline pipe, VideoRequest request, IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        Validate(pipe, request);
        int width = request.Width > 0 ? request.Width : pipe.NativeSize, height = request.Height > 0 ? request.Height : pipe.NativeSize;
        pipe.ValidateSize(width, height);
        return request.Method switch
        {
            GenerationMethod.Direct => Direct(pipe, request, width, height, null, progress, cancellationToken),
            GenerationMethod.AttnScale => Direct(pipe, request, width, height,
                new VideoUNetForwardOptions { SelfAttentionEntropyRatio = CascadeGenerator.AttentionPixelRatio(pipe.NativeSize, width, height) },
                progress, cancellationToken),
            GenerationMethod.UpscaleOnly => UpscaleOnly(pipe, request, width, height, progress, cancellationToken),
            _ => SelfCascade(pipe, request, Plan(pipe, width, height, request), progress, cancellationToken),
        };
    }

    /// <summary>Frames, steps, seed, guidance and chunk sizes; throws one clear <see cref="ArgumentException"/>.</summary>
    public static void Validate(VideoPipeline pipe, VideoRequest request)
    {
        VideoFrames.Validate(request.Frames, pipe.Unet.MaxFrames);
        if (request.NumVideos < 1) throw new ArgumentException($"the number of videos must be at least 1 (got {request.NumVideos})");
        if (request.FramesPerDecode < 1) throw new ArgumentException($"frames per decode must be at least 1 (got {request.FramesPerDecode})");
        if (request.VideosPerUNetCall is int k && k < 1) throw new ArgumentException($"videos per UNet call must be at least 1 (got {k})");
        StableDiffusionPipeline.ValidateRequest(request.ToCascadeRequest().Request);
        if (request.Upsamplers is { } ups && request.Method == GenerationMethod.SelfCascade)
        {
            var config = pipe.UpsamplerUNetConfig;
            for (int i = 0; i < ups.Sets.Count; i++)
            {
                var problems = ups.Sets[i].Config.Incompatibilities(config);
                if (problems.Count > 0)
                    throw new InvalidOperationException($"upsampler set {i + 1} (for stage {i + 1}) does not fit this UNet: {string.Join("; ", problems)}");
            }
        }
    }

    private static VideoResult Direct(VideoPipeline pipe, VideoRequest request, int width, int height, VideoUNetForwardOptions? options,
        IProgress<GenerationProgress>? progress, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        double guidance = request.Guidance ?? pipe.DefaultGuidance;
        using var emb = pipe.EncodePrompt(request.Prompt, request.NegativePrompt, guidance > 1.0);
        double textSeconds = sw.Elapsed.TotalSeconds;
        sw.Restart();
        var latents = TextToVideo(pipe, request, emb, guidance, width, height, request.Steps, request.Seed, options, progress, ct, 0, 1);
        var stage = new StageReport(0, width, height, request.Steps, 1.0, guidance, sw.Elapsed.TotalSeconds);
        return Finish(pipe, request, latents, [stage], [], textSeconds, null, ct);
    }

    /// <summary>Text-to-video from noise (seed's generator) at one size: diffusers' AnimateDiffPipeline loop, latents out.</summary>
    public static Tensor TextToVideo(VideoPipeline pipe, VideoRequest request, PromptEmbeddings emb, double guidance, int width, int height,
        int steps, long seed, VideoUNetForwardOptions? options, IProgress<GenerationProgress>? progress, CancellationToken ct, int stage, int stageCount)
    {
        using var generator = new Generator((ulong)seed);
        var scheduler = pipe.Scheduler;
        scheduler.SetTimesteps(steps);
        using var noise = pipe.InitialNoise(generator, request.NumVideos, request.Frames, width, height);
        using var sigma = tensor(scheduler.InitNoiseSigma, ScalarType.Float32, device: pipe.Device);
        using var start = noise * sigma;
        return pipe.Denoise(start, scheduler.Timesteps, emb, guidance, generator, options, request.VideosPerUNetCall, progress, ct, stage, stageCount);
    }

    private static VideoResult UpscaleOnly(VideoPipeline pipe, VideoRequest request, int width, int height,
        IProgress<GenerationProgress>? progress, CancellationToken ct)
    {
        var plan = Plan(pipe, width, height, request);
        var b = plan.Base.Size;
        using var baseResult = Direct(pipe, request, b.Width, b.Height, null, progress, ct);
        var sw = Stopwatch.StartNew();
        var videos = new List<RgbImage[]>();
        foreach (var frames in baseResult.Videos)
        {
            var up = new RgbImage[frames.Length];
            for (int f = 0; f < frames.Length; f++)
            {
                using var scope = NewDisposeScope();
                using var t = frames[f].ToTensor();
                // Bicubic in pixel space per frame, the "just resize" baseline, as for images.
                var r = nn.functional.interpolate(t, [height, width], mode: InterpolationMode.Bicubic, align_corners: false).clamp(-1, 1);
                up[f] = RgbImage.FromDecoderOutput(r);
            }
            videos.Add(up);
        }
        var timings = new Dictionary<string, double>(baseResult.Timings) { ["resize"] = sw.Elapsed.TotalSeconds };
        var latents = baseResult.Latents.clone();
        return new VideoResult(videos, latents, [.. baseResult.Stages], [], timings, width, height, plan);
    }

    private static VideoResult SelfCascade(VideoPipeline pipe, VideoRequest request, ScalePlan plan,
        IProgress<GenerationProgress>? progress, CancellationToken ct)
    {
        var stages = new List<StageReport>();
        var stageVideos = new List<RgbImage[]>();
        var sw = Stopwatch.StartNew();
        var baseStage = plan.Base;
        bool anyGuidance = plan.Stages.Any(s => s.GuidanceScale > 1.0);
        using var emb = pipe.EncodePrompt(request.Prompt, request.NegativePrompt, anyGuidance);
        using var embNoCfg = anyGuidance && plan.Stages.Any(s => s.GuidanceScale <= 1.0)
            ? new PromptEmbeddings { Positive = emb.Positive.alias() } : null;
        double textSeconds = sw.Elapsed.TotalSeconds;
        int count = plan.Stages.Count;

        sw.Restart();
        var latents = TextToVideo(pipe, request, Pick(emb, embNoCfg, baseStage.GuidanceScale), baseStage.GuidanceScale,
            baseStage.Width, baseStage.Height, baseStage.Steps, CascadeMath.StageSeed(request.Seed, 0), null, progress, ct, 0, count);
        stages.Add(new StageReport(0, baseStage.Width, baseStage.Height, baseStage.DenoisingSteps, 1.0, baseStage.GuidanceScale, sw.Elapsed.TotalSeconds));
        try
        {
            if (request.KeepStageFrames && count > 1) stageVideos.AddRange(DecodeToFrames(pipe, request, latents, ct));
            for (int i = 1; i < count; i++)
            {
                ct.ThrowIfCancellationRequested();
                sw.Restart();
                var stage = plan.Stages[i];
                var next = RunStage(pipe, request, latents, stage, Pick(emb, embNoCfg, stage.GuidanceScale),
                    CascadeMath.StageSeed(request.Seed, i), progress, ct, count);
                latents.Dispose();
                latents = next;
                stages.Add(new StageReport(i, stage.Width, stage.Height, stage.DenoisingSteps, stage.Strength, stage.GuidanceScale, sw.Elapsed.TotalSeconds));
                if (request.KeepStageFrames && i < count - 1) stageVideos.AddRange(DecodeToFrames(pipe, request, latents, ct));
            }
        }
        catch
        {
            latents.Dispose();
            throw;
        }
        return Finish(pipe, request, latents, stages, stageVideos, textSeconds, plan, ct);
    }

    private static PromptEmbeddings Pick(PromptEmbeddings cfg, PromptEmbeddings? noCfg, double guidance) =>
        guidance > 1.0 || noCfg is null ? cfg : noCfg;

    /// <summary>
    /// The pivot: every frame's latent upsampled on its own, (B, C, F, h, w) -> (B*F, C, h, w) -> interpolate -> back.
    /// </summary>
    public static Tensor UpsampleFrames(Tensor latents, long height, long width, PivotResizeMode mode = PivotResizeMode.Bilinear)
    {
        using var scope = NewDisposeScope();
        var up = Pivot.Upsample(VideoFrames.Fold(latents), height, width, mode);
        return VideoFrames.Unfold(up, latents.shape[2]).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The stage's noise: randn((B, F, C, h, w)) on <paramref name="generator"/> permuted to (B, C, F, h, w) — the
    /// draw order of diffusers' video-to-video pipeline for a video input (not randn of the permuted shape).
    /// </summary>
    public static Tensor StageNoise(Generator generator, long[] videoShape, Device device)
    {
        if (videoShape.Length != 5) throw new ArgumentException("a video shape is (B, C, F, h, w)");
        using var scope = NewDisposeScope();
        var drawn = randn([videoShape[0], videoShape[2], videoShape[1], videoShape[3], videoShape[4]], dtype: ScalarType.Float32, generator: generator);
        return drawn.permute(0, 2, 1, 3, 4).contiguous().to(device).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One pivot-guided video stage: timesteps = get_timesteps(steps, strength); z = add_noise(pivot, noise(seed),
    /// timesteps[0]); denoise the remaining steps with the same generator (diffusers' AnimateDiffVideoToVideoPipeline
    /// given these latents).
    /// </summary>
    public static Tensor RunStage(VideoPipeline pipe, VideoRequest request, Tensor previousLatents, ScaleStage stage, PromptEmbeddings emb,
        long seed, IProgress<GenerationProgress>? progress, CancellationToken ct, int stageCount)
    {
        using var mode = torch.inference_mode();
        var scheduler = pipe.Scheduler;
        var (timesteps, _) = scheduler.GetImg2ImgTimesteps(stage.Steps, stage.Strength);
        if (timesteps.Count == 0)
            throw new ArgumentException($"stage {stage.Index}: {stage.Steps} steps at strength {stage.Strength} leave no step to run");
        using var generator = new Generator((ulong)seed);
        using var pivot = UpsampleFrames(previousLatents, stage.LatentHeight, stage.LatentWidth, request.PivotMode);
        Tensor noisy;
        using (var scope = NewDisposeScope())
        {
            var noise = StageNoise(generator, pivot.shape, pipe.Device);
            noisy = scheduler.AddNoise(pivot, noise, timesteps[0]).MoveToOuterDisposeScope();
        }
        using var _ = noisy;
        // The tuned cascade: the stage's upsampler set per frame, fed by the previous stage's clean latent video.
        using var states = request.Upsamplers is null ? null : emb.ForUnet((int)previousLatents.shape[0]);
        using var upsamplers = request.Upsamplers is null ? null
            : new VideoUpsamplerStage(request.Upsamplers, stage.Index, pipe.UpsamplerUNet, previousLatents, states!, emb.HasGuidance ? 2 : 1);
        return pipe.Denoise(noisy, timesteps, emb, stage.GuidanceScale, generator, null, request.VideosPerUNetCall, progress, ct, stage.Index, stageCount,
            upsamplers is null ? null : upsamplers.OptionsForStep);
    }

    private static List<RgbImage[]> DecodeToFrames(VideoPipeline pipe, VideoRequest request, Tensor latents, CancellationToken ct)
    {
        using var video = pipe.DecodeVideo(latents, request.FramesPerDecode, request.VaeTiling, request.TileOptions, ct);
        return VideoPipeline.ToFrames(video);
    }

    private static VideoResult Finish(VideoPipeline pipe, VideoRequest request, Tensor latents, List<StageReport> stages,
        List<RgbImage[]> stageVideos, double textSeconds, ScalePlan? plan, CancellationToken ct)
    {
        try
        {
            var sw = Stopwatch.StartNew();
            var videos = DecodeToFrames(pipe, request, latents, ct);
            var timings = new Dictionary<string, double> { ["text_encode"] = textSeconds };
            foreach (var s in stages) timings[$"stage{s.Index}"] = s.Seconds;
            timings["denoise"] = stages.Sum(s => s.Seconds);
            timings["decode"] = sw.Elapsed.TotalSeconds;
            var last = stages[^1];
            return new VideoResult(videos, CascadeGenerator.CpuCopy(latents), stages, stageVideos, timings, last.Width, last.Height, plan);
        }
        finally
        {
            latents.Dispose();
        }
    }
}
