using SelfCascade.Models.Clip;
using SelfCascade.Schedulers;
using static TorchSharp.torch;

namespace SelfCascade.Training;

/// <summary>Settings of train-base besides the shared loop's.</summary>
public sealed record BaseModelOptions
{
    /// <summary>A built-in preset (tiny, small) or a JSON file with "unet" and "text_encoder" configs.</summary>
    public string Preset { get; init; } = "tiny";
    /// <summary>Training (and native) image size in pixels; a multiple of 2^(blocks-1).</summary>
    public int Size { get; init; } = 32;
    /// <summary>A CLIP tokenizer folder (vocab.json + merges.txt or tokenizer.json); copied into the export.</summary>
    public required string TokenizerDir { get; init; }
    /// <summary>EMA decay of the weights; 0 = no EMA (previews and export use the live weights).</summary>
    public double EmaDecay { get; init; } = 0.999;
    /// <summary>Noise schedule: linear (DDPM's 1e-4..0.02, suits pixel space) or scaled_linear (SD's 0.00085..0.012).</summary>
    public string BetaSchedule { get; init; } = "linear";
    /// <summary>epsilon or v_prediction.</summary>
    public string PredictionType { get; init; } = "epsilon";
    /// <summary>Preview grid every N steps (0 = only the final one).</summary>
    public int PreviewEvery { get; init; } = 500;
    /// <summary>Preview prompts; null = the first four distinct captions of the data.</summary>
    public IReadOnlyList<string>? PreviewPrompts { get; init; }
    public int PreviewSteps { get; init; } = 25;
    public double PreviewGuidance { get; init; } = 4.0;
    /// <summary>Weight dtype of the exported folder (fp16 keeps the tiny preset well under 30 MB).</summary>
    public ScalarType ExportDType { get; init; } = ScalarType.Float16;
    /// <summary>"cpu", "cuda", "cuda:N".</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>
    /// Start from an exported model folder (unet/, text_encoder/) of the same preset instead of fresh weights: the
    /// full fine-tune baseline at a higher resolution (the paper's comparison of adaptation cost).
    /// </summary>
    public string? InitFrom { get; init; }
    /// <summary>Whether the text encoder trains too (false: frozen, only the UNet is fine-tuned).</summary>
    public bool TrainTextEncoder { get; init; } = true;
    /// <summary>Captions whose images are not trained on (e.g. a benchmark's prompts when fine-tuning at a higher
    /// size, so its high-resolution ground truth stays unseen); null = none.</summary>
    public IReadOnlySet<string>? ExcludeCaptions { get; init; }
    /// <summary>Min-SNR-γ loss weighting (<see cref="MinSnrWeighting"/>; diffusers' --snr_gamma, 5 in the paper); 0 = off.</summary>
    public double SnrGamma { get; init; }

    public IReadOnlyList<string> Validate()
    {
        var p = new List<string>();
        if (Size < 8) p.Add($"size {Size} is too small (at least 8)");
        if (!(EmaDecay >= 0 && EmaDecay < 1)) p.Add($"ema decay {EmaDecay} must lie in [0, 1)");
        if (!(SnrGamma >= 0 && double.IsFinite(SnrGamma))) p.Add($"snr gamma {SnrGamma} must be 0 (off) or positive");
        if (BetaSchedule is not ("linear" or "scaled_linear")) p.Add($"beta schedule '{BetaSchedule}' must be linear or scaled_linear");
        if (PredictionType is not ("epsilon" or "v_prediction")) p.Add($"prediction type '{PredictionType}' must be epsilon or v_prediction");
        if (PreviewEvery < 0) p.Add($"preview-every must be ≥ 0 (got {PreviewEvery})");
        if (PreviewSteps < 1) p.Add($"preview steps must be at least 1 (got {PreviewSteps})");
        if (ExportDType is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16)) p.Add($"export dtype {ExportDType} must be fp32, fp16 or bf16");
        return p;
    }

    /// <summary>The scheduler config the model is trained with and exported with (DDIM for sampling).</summary>
    public SchedulerConfig SchedulerConfig() => new()
    {
        ClassName = "DDIMScheduler",
        NumTrainTimesteps = 1000,
        BetaStart = BetaSchedule == "linear" ? 0.0001 : 0.00085,
        BetaEnd = BetaSchedule == "linear" ? 0.02 : 0.012,
        BetaSchedule = BetaSchedule,
        PredictionType = PredictionType,
        // Pixel space: clip the predicted x0 to the image range, as DDPM/DDIM pixel models do.
        ClipSample = true,
        SetAlphaToOne = false,
        StepsOffset = 1,
        TimestepSpacing = "leading",
    };
}

/// <summary>
/// train-base end to end: the dataset at the training size, the <see cref="BaseModelTask"/>, the shared loop, and
/// the diffusers folder in <c>OUT/model</c> at the end.
/// </summary>
public static class BaseModelTraining
{
    public const string ModelFolder = "model";

    public static TrainingResult Run(string dataDir, TrainingOptions options, BaseModelOptions model,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default,
        Action<string>? log = null)
    {
        options.ThrowIfInvalid();
        var problems = model.Validate();
        if (problems.Count > 0) throw new ArgumentException(string.Join("; ", problems));
        var preset = BaseModelPreset.Resolve(model.Preset);
        var data = new ImageFolderDataset(dataDir, model.Size, CropMode.Random, excludeCaptions: model.ExcludeCaptions);
        log?.Invoke($"data: {data.Summary()} at {model.Size}x{model.Size}");
        if (model.ExcludeCaptions is { } excluded)
            log?.Invoke($"excluded: {data.Excluded.Count} file(s) whose caption is one of the {excluded.Count} listed");
        foreach (var s in data.Skipped.Take(5)) log?.Invoke($"  skipped {s.Path}: {s.Reason}");
        var tokenizer = ClipTokenizer.FromFolder(model.TokenizerDir);
        using var task = new BaseModelTask(preset, model, tokenizer, data, options.Seed);
        log?.Invoke($"model: preset {preset.Name}, UNet {task.UnetParameterCount:N0} + text encoder {task.TextEncoderParameterCount:N0} parameters");
        var trainer = new Trainer(task, data, options);
        return trainer.Run(progress, cancellationToken);
    }
}
