using System.Globalization;
using SelfCascade.Cascade;
using SelfCascade.Cascade.Upsamplers;
using SelfCascade.Models.Unet;
using SelfCascade.Pipelines;
using SelfCascade.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SelfCascade.Training;

/// <summary>Settings of train-upsamplers besides the shared loop's.</summary>
public sealed record UpsamplerTrainingOptions
{
    /// <summary>The frozen base model (a diffusers folder; pixel-space folders without a VAE work too).</summary>
    public required string ModelDir { get; init; }
    public UpsamplerVariant Variant { get; init; } = UpsamplerVariant.Lite;
    /// <summary>Side ratio of the adaptation (HR size / LR size).</summary>
    public double StageScale { get; init; } = 2.0;
    /// <summary>HR crop size in pixels; 0 = the model's native size × the stage scale.</summary>
    public int Size { get; init; }
    /// <summary>K of Algorithm 1: t ~ U{1..K}.</summary>
    public int MaxTimestep { get; init; } = 700;
    /// <summary>Injection points; null = the released default.</summary>
    public IReadOnlyList<InjectionPoint>? Points { get; init; }
    /// <summary>Weights of the frozen networks (fp32, fp16, bf16); the upsamplers train in fp32.</summary>
    public ScalarType FrozenDType { get; init; } = ScalarType.Float32;
    public string Device { get; init; } = "cpu";
    /// <summary>Captions whose images are not trained on (e.g. a benchmark's prompts: its ground truth stays unseen); null = none.</summary>
    public IReadOnlySet<string>? ExcludeCaptions { get; init; }
}

/// <summary>
/// The paper's Algorithm 1 (§4.2): an HR crop x; its latent z_hr = VAE(x) (or x in pixel space); the LR pivot
/// z_lr = VAE(antialiased downsample of x by the stage scale); t ~ U{1..K}; z_t = add_noise(z_hr, ε, t); the target
/// ε (or v, by the scheduler's prediction type); loss = MSE(UNet(z_t, t, c) with the upsamplers injecting
/// φ(h_lr(z_lr), t), target). Only the upsampler set takes gradients; the UNet, VAE and text encoder(s) are frozen.
/// </summary>
public sealed class UpsamplerTrainingTask : TrainingTask
{
    private readonly StableDiffusionPipeline _pipe;
    private readonly FeatureUpsamplerSet _set;
    private readonly UpsamplerTrainingOptions _options;
    private readonly (string, Parameter)[] _trainable;
    private readonly int _hr;
    private readonly int _lr;
    private long _steps;

    public const string UpsamplerFolder = FeatureUpsamplerSet.TrainingOutputSubfolder;

    /// <param name="seed">Seeds the set's initial weights (the run's seed, so a run is reproducible from scratch).</param>
    public UpsamplerTrainingTask(UpsamplerTrainingOptions options, long seed = 0)
    {
        _options = options;
        if (options.MaxTimestep < 1) throw new ArgumentException($"max timestep {options.MaxTimestep} must be at least 1");
        if (!(options.StageScale > 1)) throw new ArgumentException($"stage scale {options.StageScale} must be greater than 1");
        var pipelineOptions = new PipelineOptions { Device = options.Device, DType = options.FrozenDType };
        // A ModelScope-style text-to-video folder trains on its UNet3D's spatial half: the upsamplers work per frame.
        _pipe = Video.Pipelines.VideoPipeline.IsTextToVideoSdFolder(options.ModelDir)
            ? Video.Pipelines.TextToVideoSdPipeline.SpatialImagePipeline(options.ModelDir, pipelineOptions)
            : StableDiffusionPipeline.FromPretrained(options.ModelDir, pipelineOptions);
        try
        {
            if (options.MaxTimestep >= _pipe.Scheduler.Config.NumTrainTimesteps)
                throw new ArgumentException($"max timestep {options.MaxTimestep} must be below num_train_timesteps {_pipe.Scheduler.Config.NumTrainTimesteps}");
            _hr = options.Size > 0 ? options.Size : (int)Math.Round(_pipe.NativeSize * options.StageScale);
            _lr = (int)Math.Round(_hr / options.StageScale);
            int f = _pipe.VaeScaleFactor;
            if (_hr % f != 0 || _lr % f != 0)
                throw new ArgumentException($"HR crop {_hr} px and LR size {_lr} px must both be multiples of the VAE factor {f}");
            torch.manual_seed(seed);
            _set = FeatureUpsamplerSet.Create(options.Variant, _pipe.Unet, options.Points, options.StageScale, ScalarType.Float32);
            _trainable = _set.named_parameters().Select(p => (p.name, p.parameter)).ToArray();
        }
        catch
        {
            _pipe.Dispose();
            throw;
        }
    }

    public StableDiffusionPipeline Pipeline => _pipe;
    public FeatureUpsamplerSet Upsamplers => _set;
    /// <summary>HR crop size and the LR pivot's size, in pixels.</summary>
    public int HighResSize => _hr;
    public int LowResSize => _lr;

    public override Device Device => _pipe.Device;
    public override IReadOnlyList<(string Name, Parameter Parameter)> TrainableParameters => _trainable;

    public override IReadOnlyList<nn.Module> FrozenModules
    {
        get
        {
            var list = new List<nn.Module> { _pipe.Unet };
            if (_pipe.Vae is not null) list.Add(_pipe.Vae);
            list.AddRange(_pipe.Prompts.TextEncoders);
            return list;
        }
    }

    public override IReadOnlyDictionary<string, string> Fingerprint => new Dictionary<string, string>
    {
        ["model"] = Path.GetFullPath(_options.ModelDir),
        ["variant"] = UpsamplerVariants.Name(_options.Variant),
        ["points"] = string.Join(",", _set.Points),
        ["stage_scale"] = _options.StageScale.ToString("R", CultureInfo.InvariantCulture),
        ["hr_size"] = _hr.ToString(CultureInfo.InvariantCulture),
        ["max_timestep"] = _options.MaxTimestep.ToString(CultureInfo.InvariantCulture),
        ["frozen_dtype"] = _options.FrozenDType.ToString(),
        ["device"] = _pipe.Device.ToString(),
    };

    public override Tensor Loss(TrainingBatch batch, Generator generator)
    {
        using var scope = NewDisposeScope();
        var x = batch.Images.to(_pipe.Device);
        long b = x.shape[0];
        var lrImage = Pivot.Downsample(x, _lr, _lr);
        // The VAE runs under inference mode; clone to get ordinary tensors autograd may save.
        var hr = _pipe.EncodeImage(x).clone();
        var lr = _pipe.EncodeImage(lrImage).clone();
        var noise = randn(hr.shape, dtype: ScalarType.Float32, generator: generator).to(_pipe.Device);
        var t = randint(1, _options.MaxTimestep + 1, [b], dtype: ScalarType.Int64, generator: generator).to(_pipe.Device);
        var noisy = _pipe.Scheduler.AddTrainingNoise(hr, noise, t);
        var target = _pipe.Scheduler.GetTrainingTarget(hr, noise, t);
        var (states, added) = EncodeCaptions(batch.Captions);
        var pred = _set.TrainingForward(_pipe.Unet, noisy.to(_pipe.DType), t, lr.to(_pipe.DType), states, added);
        return F.mse_loss(pred.to(ScalarType.Float32), target).MoveToOuterDisposeScope();
    }

    /// <summary>Text states (and SDXL's pooled embedding and time ids) of the captions from the frozen encoder(s).</summary>
    private (Tensor States, UNetAddedConditions? Added) EncodeCaptions(IReadOnlyList<string> captions)
    {
        var states = new List<Tensor>();
        var pooled = new List<Tensor>();
        foreach (var c in captions)
        {
            using var e = _pipe.EncodePrompt(c, null, classifierFreeGuidance: false);
            states.Add(e.Positive.clone());
            if (e.PooledPositive is not null) pooled.Add(e.PooledPositive.clone());
        }
        var s = cat(states, 0);
        if (pooled.Count == 0) return (s, null);
        return (s, new UNetAddedConditions(cat(pooled, 0), _pipe.TimeIds(_hr, _hr, captions.Count)));
    }

    public override void AfterOptimizerStep(long step) => _steps = step;

    public override void Finish(string outputDir) => _set.Save(Path.Combine(outputDir, UpsamplerFolder), trainingSteps: _steps);

    public override void Dispose()
    {
        _set.Dispose();
        _pipe.Dispose();
        base.Dispose();
    }
}

/// <summary>
/// train-upsamplers end to end: the HR crops, the task, the shared loop, the set saved to OUT/upsamplers. The data
/// folder may hold video clips too (frame folders with a caption.txt, animated GIF/WebP): every frame is one training
/// image, since the video cascade applies the same set per frame.
/// </summary>
public static class UpsamplerTraining
{
    /// <param name="clipReaders">Readers for video types beyond frame folders and animated GIF/WebP (the CLI adds MP4 through ffmpeg).</param>
    public static TrainingResult Run(string dataDir, TrainingOptions options, UpsamplerTrainingOptions upsamplers,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default, Action<string>? log = null,
        IReadOnlyList<Video.Input.VideoClipReader>? clipReaders = null)
    {
        options.ThrowIfInvalid();
        using var task = new UpsamplerTrainingTask(upsamplers, options.Seed);
        // Video clips train the same per-frame upsamplers (the video cascade applies them per frame): every frame is an image.
        var data = new ImageFolderDataset(dataDir, task.HighResSize, CropMode.Random, videoClips: true, clipReaders: clipReaders,
            excludeCaptions: upsamplers.ExcludeCaptions);
        log?.Invoke($"data: {data.Summary()}, HR crops {task.HighResSize} px, LR pivots {task.LowResSize} px");
        if (upsamplers.ExcludeCaptions is { } excluded)
            log?.Invoke($"excluded: {data.Excluded.Count} file(s) whose caption is one of the {excluded.Count} listed");
        foreach (var s in data.Skipped.Take(5)) log?.Invoke($"  skipped {s.Path}: {s.Reason}");
        log?.Invoke($"upsamplers: {UpsamplerVariants.Name(upsamplers.Variant)}, points {string.Join(", ", task.Upsamplers.Points)}, {task.Upsamplers.ParameterCount:N0} trainable parameters");
        return new Trainer(task, data, options).Run(progress, cancellationToken);
    }
}
