namespace SelfCascade.Cascade;

/// <summary>Per-stage overrides; null keeps the plan-wide value.</summary>
public sealed record StageSettings(int? Steps = null, double? Strength = null, double? GuidanceScale = null);

/// <summary>
/// Inputs to <see cref="ScalePlanner.Plan"/> besides the target size. Model-dependent values (native size,
/// granularity, guidance) come from the caller, which knows the model; the defaults are SD 1.5/2.1-base's.
/// </summary>
public sealed record ScalePlanOptions
{
    /// <summary>The model's native (training) edge in pixels: 512 for SD 1.5 / 2.1-base, 768 for SD 2.1-v, 1024 for SDXL.</summary>
    public int NativeSize { get; init; } = 512;

    /// <summary>Size granularity in pixels (<see cref="CascadeMath.Granularity"/>): every stage before the last is a multiple of it.</summary>
    public int Granularity { get; init; } = 64;

    /// <summary>VAE scale factor (pixels per latent); the target must be a multiple of it (diffusers' check_inputs asks for 8).</summary>
    public int VaeScaleFactor { get; init; } = 8;

    /// <summary>An explicit base stage (<c>--base-size WxH</c>); null chooses one of about the native area at the target's aspect.</summary>
    public PixelSize? BaseSize { get; init; }

    /// <summary>Inference steps of every stage's schedule (later stages run <c>int(steps * strength)</c> of them).</summary>
    public int Steps { get; init; } = 50;

    /// <summary>img2img strength of every later stage, in (0, 1]; 0.7 ≈ the paper's K = 700 (docs/ARCHITECTURE.md §7).</summary>
    public double Strength { get; init; } = 0.7;

    /// <summary>Classifier-free guidance scale (7.5 is diffusers' SD default; SDXL's is 5.0).</summary>
    public double GuidanceScale { get; init; } = 7.5;

    /// <summary>Overrides by stage index (0 = base). The base stage always has strength 1.</summary>
    public IReadOnlyDictionary<int, StageSettings> StageOverrides { get; init; } = new Dictionary<int, StageSettings>();

    /// <summary>The automatic base keeps its area within [Min, Max] × native pixels where it can.</summary>
    public double MinBaseAreaRatio { get; init; } = 0.7;

    /// <summary>Upper end of the base-area window; a target up to this × native pixels is generated in one stage.</summary>
    public double MaxBaseAreaRatio { get; init; } = 1.5;

    /// <summary>Largest relative aspect-ratio error accepted for a stage (automatic or explicit base) when a closer one exists.</summary>
    public double MaxAspectError { get; init; } = 0.05;

    /// <summary>Refuse targets whose side exceeds this × the native edge.</summary>
    public int MaxSideFactor { get; init; } = 16;

    /// <summary>Refuse plans whose final latent (batch × channels × h × w × bytes) exceeds this many bytes; null: no limit.</summary>
    public long? MaxLatentBytes { get; init; }

    /// <summary>
    /// UNet working memory per byte of final latent, from shared/bench (SD 2.1 at 4096²: ~8 GiB of activations for a
    /// batch-2 fp16 latent of 4 MiB, about 2000x): turns a memory budget into <see cref="MaxLatentBytes"/>.
    /// </summary>
    public const long ActivationBytesPerLatentByte = 2048;

    /// <summary>The latent budget for <paramref name="memoryBytes"/> of working memory.</summary>
    public static long LatentBudgetFor(long memoryBytes) => memoryBytes / ActivationBytesPerLatentByte;

    /// <summary>Batch size, latent channels and bytes per element used by the memory estimates.</summary>
    public int Batch { get; init; } = 1;
    public int LatentChannels { get; init; } = 4;
    public int BytesPerElement { get; init; } = 2;

    /// <summary>Self-attention's share of a native UNet step for the attention-aware cost (<see cref="CascadeMath.StepCost"/>).</summary>
    public double AttentionFraction { get; init; } = 0.09;

    /// <summary>Tiling used for the tiled-decode memory estimate.</summary>
    public TiledVaeOptions Tiling { get; init; } = new();
}
