using SelfCascade.Cascade;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;

namespace SelfCascade.Server.Jobs;

/// <summary>What a job does: text to image (every `generate` option) or upscaling a given image (`upscale`).</summary>
public enum JobKind
{
    TextToImage,
    Upscale,
    /// <summary>Work given as <see cref="JobRequest.Custom"/> (a ComfyUI graph), run on the worker like any job.</summary>
    Custom,
}

/// <summary>
/// One unit of work for <see cref="JobQueue"/>, built by an endpoint group (native, A1111, ComfyUI) from its wire
/// format. It carries the library's own request type (<see cref="GenerationRequest"/>) plus the cascade settings the
/// CLI's `generate`/`upscale` take, so a job runs exactly what the CLI would for the same options.
/// </summary>
public sealed class JobRequest
{
    /// <summary>A served model's name (<see cref="ModelRegistry.Names"/>); null = the default (the first --model).</summary>
    public string? Model { get; init; }

    public JobKind Kind { get; init; } = JobKind.TextToImage;

    /// <summary>Prompt, negative prompt, seed, size (0 = native), steps, guidance (null = model default), image count.</summary>
    public required GenerationRequest Generation { get; init; }

    /// <summary>True: <see cref="GenerationRequest.Steps"/> is replaced by the model's default (as `generate` without --steps).</summary>
    public bool UseModelDefaultSteps { get; init; }

    /// <summary>Null: self-cascade above the native size, direct otherwise (as `generate` without --method). Ignored for upscaling.</summary>
    public GenerationMethod? Method { get; init; }

    /// <summary>Scheduler by CLI name (ddim, euler, dpm++2m, ...); null = the model folder's.</summary>
    public string? Scheduler { get; init; }

    /// <summary>--base-size.</summary>
    public PixelSize? BaseSize { get; init; }
    /// <summary>--pivot-strength, in (0, 1]; null = the model's default.</summary>
    public double? PivotStrength { get; init; }
    /// <summary>--stage-steps / --stage-strength / --stage-guidance, by stage index (0 = base stage).</summary>
    public IReadOnlyDictionary<int, StageSettings> StageOverrides { get; init; } = new Dictionary<int, StageSettings>();
    public PivotResizeMode PivotMode { get; init; } = PivotResizeMode.Bilinear;
    /// <summary>A served feature-upsampler set by name (--upsamplers: the tuned cascade); null = tuning-free.</summary>
    public string? Upsamplers { get; init; }
    /// <summary>Served LoRAs by name and scale (--lora FILE:SCALE), merged in order for this job and restored afterwards.</summary>
    public IReadOnlyList<SelfCascade.Server.Extras.LoraUse> Loras { get; init; } = [];
    public VaeTiling VaeTiling { get; init; } = VaeTiling.Auto;

    /// <summary>Upscale only: the input image (decoded and size-checked by the caller) and the factor per side (2 or 4).</summary>
    public RgbImage? Image { get; init; }
    public int Scale { get; init; } = 2;

    /// <summary>A latent-to-RGB preview event every N denoising steps (0 = none); stage images are always sent.</summary>
    public int PreviewEvery { get; init; } = 5;

    /// <summary>Which API submitted it ("native", "a1111", "comfyui", ...): recorded with the job.</summary>
    public string Origin { get; init; } = "native";

    /// <summary>Extra PNG text chunks (added to the `generate`-style metadata; existing keys are not overridden).</summary>
    public IReadOnlyDictionary<string, string>? ExtraMetadata { get; init; }

    /// <summary>The caller's parameters as JSON (what the job record shows); null = a summary built from this request.</summary>
    public string? ParametersJson { get; init; }

    /// <summary><see cref="JobKind.Custom"/> only: the work (validated by the caller; see <see cref="CustomJobContext"/>).</summary>
    public Func<CustomJobContext, CustomJobResult>? Custom { get; init; }

    /// <summary><see cref="JobKind.Custom"/> only: the kind the job record shows (e.g. "comfyui-graph").</summary>
    public string? CustomKind { get; init; }
}
