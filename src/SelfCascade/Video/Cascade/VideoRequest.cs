using SelfCascade.Cascade;
using SelfCascade.Cascade.Upsamplers;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using static TorchSharp.torch;

namespace SelfCascade.Video.Cascade;

/// <summary>A text-to-video request at a target size, with the cascade's settings (the video analogue of <see cref="CascadeRequest"/>).</summary>
public sealed class VideoRequest
{
    public required string Prompt { get; init; }
    public string? NegativePrompt { get; init; }
    /// <summary>Target size in pixels; 0 = the model's native size.</summary>
    public int Width { get; init; }
    public int Height { get; init; }
    /// <summary>Frames per video: 1 ≤ frames ≤ the motion model's maximum sequence length.</summary>
    public int Frames { get; init; } = 16;
    public long Seed { get; init; }
    public int Steps { get; init; } = 25;
    /// <summary>Classifier-free guidance; null = the model's default (7.5 for SD 1.x/2.x).</summary>
    public double? Guidance { get; init; }
    public int NumVideos { get; init; } = 1;

    public GenerationMethod Method { get; init; } = GenerationMethod.SelfCascade;
    /// <summary>The base stage size; null = the planner's choice (about native area at the target's aspect).</summary>
    public PixelSize? BaseSize { get; init; }
    /// <summary>img2img strength of every later stage; null = the model's default (0.7 ≈ the paper's K = 700).</summary>
    public double? PivotStrength { get; init; }
    public IReadOnlyDictionary<int, StageSettings> StageOverrides { get; init; } = new Dictionary<int, StageSettings>();
    public PivotResizeMode PivotMode { get; init; } = PivotResizeMode.Bilinear;

    public VaeTiling VaeTiling { get; init; } = VaeTiling.Auto;
    public TiledVaeOptions? TileOptions { get; init; }
    /// <summary>Frames per VAE decode call (bounds decode memory; the result does not depend on it).</summary>
    public int FramesPerDecode { get; init; } = 8;
    /// <summary>Videos per UNet call (1 = the CFG halves one after the other); null = the whole batch at once.</summary>
    public int? VideosPerUNetCall { get; init; }
    /// <summary>
    /// The tuned Self-Cascade: time-aware feature upsamplers (image checkpoints, set i for stage i+1, the last for any
    /// later stage) applied per frame inside the video UNet at the image injection points. AnimateDiff only (a UNet3D
    /// model gives <see cref="NotSupportedException"/>); used by <see cref="GenerationMethod.SelfCascade"/>, ignored by
    /// the baselines. Not owned: dispose it yourself. Null = the tuning-free cascade.
    /// </summary>
    public FeatureUpsamplerInjector? Upsamplers { get; init; }
    /// <summary>Decode and keep every earlier stage's frames too.</summary>
    public bool KeepStageFrames { get; init; }

    /// <summary>The image request the planner and the image pieces see: the same settings, one image per frame.</summary>
    internal CascadeRequest ToCascadeRequest() => new()
    {
        Request = new GenerationRequest(Prompt)
        {
            NegativePrompt = NegativePrompt, Width = Width, Height = Height, Seed = Seed, Steps = Steps, Guidance = Guidance,
            // The planner's memory estimates count every frame of every video.
            NumImages = NumVideos * Math.Max(1, Frames),
        },
        Method = Method, BaseSize = BaseSize, PivotStrength = PivotStrength, StageOverrides = StageOverrides,
        PivotMode = PivotMode, VaeTiling = VaeTiling, TileOptions = TileOptions,
    };
}

/// <summary>
/// The videos (per video, its frames), the final latents (B, C, F, h, w; scaled, fp32, CPU), each stage's record
/// (and frames when kept), timings and the plan.
/// </summary>
public sealed class VideoResult(List<RgbImage[]> videos, Tensor latents, List<StageReport> stages, List<RgbImage[]> stageVideos,
    Dictionary<string, double> timings, int width, int height, ScalePlan? plan) : IDisposable
{
    public IReadOnlyList<RgbImage[]> Videos { get; } = videos;
    public Tensor Latents { get; } = latents;
    public IReadOnlyList<StageReport> Stages { get; } = stages;
    /// <summary>With <see cref="VideoRequest.KeepStageFrames"/>: every earlier stage's videos, stage by stage.</summary>
    public IReadOnlyList<RgbImage[]> StageVideos { get; } = stageVideos;
    public IReadOnlyDictionary<string, double> Timings { get; } = timings;
    public int Width { get; } = width;
    public int Height { get; } = height;
    public int Frames => (int)Latents.shape[2];
    public ScalePlan? Plan { get; } = plan;
    public void Dispose() => Latents.Dispose();
}
