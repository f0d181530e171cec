using SelfCascade.Cascade;

namespace SelfCascade.Pipelines;

/// <summary>How a size above native is reached (the baselines of the paper's comparison, and the method itself).</summary>
public enum GenerationMethod
{
    /// <summary>Sample at the target size from noise (the plain `direct` method).</summary>
    Direct,
    /// <summary>Direct, with self-attention logits scaled by sqrt(log N_test / log N_train) (Jin et al. 2023).</summary>
    AttnScale,
    /// <summary>The base-size image, bicubic-resized to the target; no diffusion at the target size.</summary>
    UpscaleOnly,
    /// <summary>Pivot-guided noise re-scheduling (paper §4.1, Algorithm 2), optionally with feature upsamplers (§4.2).</summary>
    SelfCascade,
}

/// <summary>A request for a target size: the base request plus the cascade's settings.</summary>
public sealed class CascadeRequest
{
    public required GenerationRequest Request { get; init; }
    public GenerationMethod Method { get; init; } = GenerationMethod.SelfCascade;
    /// <summary>The base stage size; null = the planner's choice (about native area at the target's aspect).</summary>
    public PixelSize? BaseSize { get; init; }
    /// <summary>img2img strength of every later stage; null = the model's default (0.7 ≈ the paper's K = 700).</summary>
    public double? PivotStrength { get; init; }
    /// <summary>Per-stage overrides of steps, strength and guidance (stage index → settings).</summary>
    public IReadOnlyDictionary<int, StageSettings> StageOverrides { get; init; } = new Dictionary<int, StageSettings>();
    public PivotResizeMode PivotMode { get; init; } = PivotResizeMode.Bilinear;
    public VaeTiling VaeTiling { get; init; } = VaeTiling.Auto;
    public TiledVaeOptions? TileOptions { get; init; }
    /// <summary>Decode and keep every stage's image (for --save-stages).</summary>
    public bool KeepStageImages { get; init; }
    /// <summary>Time-aware feature upsamplers (the tuned Self-Cascade); null = tuning-free.</summary>
    public IStageFeatureInjector? Injector { get; init; }
}

/// <summary>One stage's record: size, steps run and seconds spent.</summary>
public sealed record StageReport(int Index, int Width, int Height, int Steps, double Strength, double Guidance, double Seconds);
