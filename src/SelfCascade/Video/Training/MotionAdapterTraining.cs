using System.Globalization;
using System.Text.Json;
using SelfCascade.Data.Motion;
using SelfCascade.Imaging;
using SelfCascade.IO;
using SelfCascade.Pipelines;
using SelfCascade.Training;
using SelfCascade.Video.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SelfCascade.Video.Training;

/// <summary>Settings of train-motion besides the shared loop's.</summary>
public sealed record MotionAdapterTrainingOptions
{
    /// <summary>The frozen image model (a diffusers folder, pixel space or latent).</summary>
    public required string ModelDir { get; init; }
    /// <summary>Frames per training clip.</summary>
    public int Frames { get; init; } = MotionClipSynthesizer.DefaultFrames;
    /// <summary>Attention heads of every motion module (must divide every block's channels).</summary>
    public int Heads { get; init; } = 4;
    /// <summary>Frame-position table length: the most frames the adapter can ever take.</summary>
    public int MaxSeqLength { get; init; } = 32;
    public bool MidBlock { get; init; }
    public string Device { get; init; } = "cpu";
}

/// <summary>
/// AnimateDiff's motion-module training (Guo et al. 2023, §4.2) on synthetic clips: the image UNet and text encoder
/// are frozen; a fresh MotionAdapter (output projections zero, so training starts from the image model) is the only
/// thing that learns. Each training "image" is an emoji render; the task turns it into a clip with a motion drawn
/// from the trainer's per-micro-batch generator (<see cref="MotionClipSynthesizer"/>, so resuming stays exact), the
/// caption gets the motion's phrase ("red heart, zooming in"; a dropped caption stays empty), and the loss is the
/// ε-MSE of the motion UNet on the noised clip, one timestep per clip shared by its frames.
/// </summary>
public sealed class MotionAdapterTask : TrainingTask
{
    private readonly StableDiffusionPipeline _pipe;
    private readonly MotionAdapter _adapter;
    private readonly UNetMotionModel _model;
    private readonly MotionAdapterTrainingOptions _options;
    private readonly (string, Parameter)[] _trainable;
    private readonly int _size;
    private long _steps;

    public const string AdapterFolder = "motion_adapter";

    public MotionAdapterTask(MotionAdapterTrainingOptions options, long seed = 0)
    {
        _options = options;
        if (options.Frames < 2) throw new ArgumentException($"training clips need at least 2 frames (got {options.Frames})");
        if (options.Frames > options.MaxSeqLength) throw new ArgumentException($"{options.Frames} frames exceed the adapter's {options.MaxSeqLength} positions");
        _pipe = StableDiffusionPipeline.FromPretrained(options.ModelDir, new PipelineOptions { Device = options.Device, DType = ScalarType.Float32 });
        try
        {
            if (_pipe.Vae is not null) throw new NotSupportedException("train-motion supports pixel-space models (no VAE) only, such as the embedded emoji model");
            var u = _pipe.Unet.Config;
            var config = new MotionAdapterConfig
            {
                BlockOutChannels = u.BlockOutChannels.ToArray(), MotionLayersPerBlock = u.LayersPerBlock[0],
                MotionNumAttentionHeads = options.Heads, MotionNormNumGroups = u.NormNumGroups, MotionMaxSeqLength = options.MaxSeqLength,
                UseMotionMidBlock = options.MidBlock, MotionMidBlockLayersPerBlock = 1,
            };
            torch.manual_seed(seed);
            using (global::SelfCascade.Models.ModelConstruction.On(_pipe.Device, ScalarType.Float32)) _adapter = new MotionAdapter(config, u.NormNumGroups);
            using (no_grad())
                foreach (var m in _adapter.AllModules()) { m.ProjOut.weight!.zero_(); m.ProjOut.bias!.zero_(); }
            _model = new UNetMotionModel(_pipe.Unet, _adapter);
            _trainable = _adapter.named_parameters().Select(p => (p.name, p.parameter)).ToArray();
            _size = _pipe.NativeSize;
        }
        catch
        {
            _pipe.Dispose();
            throw;
        }
    }

    public MotionAdapter Adapter => _adapter;
    public StableDiffusionPipeline Pipeline => _pipe;
    public long ParameterCount => _adapter.parameters().Sum(p => p.numel());

    public override Device Device => _pipe.Device;
    public override IReadOnlyList<(string Name, Parameter Parameter)> TrainableParameters => _trainable;
    public override IReadOnlyList<nn.Module> FrozenModules => [_pipe.Unet, .. _pipe.Prompts.TextEncoders];

    public override IReadOnlyDictionary<string, string> Fingerprint => new Dictionary<string, string>
    {
        ["model"] = Path.GetFullPath(_options.ModelDir),
        ["frames"] = _options.Frames.ToString(CultureInfo.InvariantCulture),
        ["heads"] = _options.Heads.ToString(CultureInfo.InvariantCulture),
        ["max_seq_length"] = _options.MaxSeqLength.ToString(CultureInfo.InvariantCulture),
        ["mid_block"] = _options.MidBlock ? "true" : "false",
        ["device"] = _pipe.Device.ToString(),
    };

    public override Tensor Loss(TrainingBatch batch, Generator generator)
    {
        using var scope = NewDisposeScope();
        int b = batch.Count, f = _options.Frames;
        // Motion kind and clip seed per sample from the trainer's generator (deterministic per micro-batch).
        var draws = randint(0, int.MaxValue, [b, 2], dtype: ScalarType.Int64, generator: generator).data<long>().ToArray();
        var clips = new List<Tensor>(b);
        var captions = new List<string>(b);
        for (int i = 0; i < b; i++)
        {
            var design = RgbImage.FromDecoderOutput(batch.Images[i]);
            var kind = MotionKinds.All[(int)(draws[2 * i] % MotionKinds.All.Count)];
            var clip = MotionClipSynthesizer.Make(design, batch.Captions[i], kind, (int)draws[2 * i + 1], f, _size);
            captions.Add(batch.Captions[i].Length == 0 ? "" : clip.Caption);
            // (F, 3, S, S) in [-1, 1] -> (3, F, S, S)
            clips.Add(cat(clip.Frames.Select(fr => fr.ToTensor()).ToList(), 0).permute(1, 0, 2, 3));
        }
        var x0 = stack(clips, 0).to(_pipe.Device);                     // (B, 3, F, S, S)
        var noise = randn(x0.shape, dtype: ScalarType.Float32, generator: generator).to(_pipe.Device);
        var t = randint(0, _pipe.Scheduler.Config.NumTrainTimesteps, [b], dtype: ScalarType.Int64, generator: generator).to(_pipe.Device);
        // The scheduler's training helpers take (N, C, H, W): fold the frames into the batch, one t per clip.
        var tf = t.repeat_interleave(f);
        var x0f = VideoFrames.Fold(x0);
        var noisef = VideoFrames.Fold(noise);
        var noisy = VideoFrames.Unfold(_pipe.Scheduler.AddTrainingNoise(x0f, noisef, tf), f);
        var target = _pipe.Scheduler.GetTrainingTarget(x0f, noisef, tf);
        var states = cat(captions.Select(c => { using var e = _pipe.EncodePrompt(c, null, classifierFreeGuidance: false); return e.Positive.clone(); }).ToList(), 0);
        var pred = VideoFrames.Fold(_model.Forward(noisy, t, states));
        return F.mse_loss(pred.to(ScalarType.Float32), target).MoveToOuterDisposeScope();
    }

    public override void AfterOptimizerStep(long step) => _steps = step;

    /// <summary>A resumed run counts from its checkpoint's step (even when no step is left to train).</summary>
    public override void LoadExtraState(Checkpoint checkpoint) => _steps = checkpoint.State.Step;

    public override void Finish(string outputDir) => Save(_adapter, Path.Combine(outputDir, AdapterFolder), _steps);

    /// <summary>
    /// Writes a diffusers MotionAdapter folder: config.json and fp16 diffusion_pytorch_model.safetensors (parameters
    /// only; the fixed frame-position tables are recomputed on load).
    /// </summary>
    public static void Save(MotionAdapter adapter, string dir, long trainingSteps)
    {
        Directory.CreateDirectory(dir);
        var c = adapter.Config;
        var config = new Dictionary<string, object>
        {
            ["_class_name"] = "MotionAdapter",
            ["_diffusers_version"] = "0.28.2",
            ["block_out_channels"] = c.BlockOutChannels,
            ["motion_layers_per_block"] = c.MotionLayersPerBlock,
            ["motion_mid_block_layers_per_block"] = c.MotionMidBlockLayersPerBlock,
            ["motion_num_attention_heads"] = c.MotionNumAttentionHeads,
            ["motion_norm_num_groups"] = c.MotionNormNumGroups,
            ["motion_max_seq_length"] = c.MotionMaxSeqLength,
            ["use_motion_mid_block"] = c.UseMotionMidBlock,
            ["_selfcascade_training_steps"] = trainingSteps,
        };
        AtomicFile.WriteAllBytes(Path.Combine(dir, "config.json"), JsonSerializer.SerializeToUtf8Bytes(config, new JsonSerializerOptions { WriteIndented = true }));
        using var scope = NewDisposeScope();
        var tensors = adapter.named_parameters().Select(p => new KeyValuePair<string, Tensor>(p.name, p.parameter.detach().to(ScalarType.Float16).cpu())).ToList();
        SafeTensorsWriter.Save(Path.Combine(dir, "diffusion_pytorch_model.safetensors"), tensors);
    }

    public override void Dispose()
    {
        _adapter.Dispose();
        _pipe.Dispose();
        base.Dispose();
    }
}

/// <summary>train-motion end to end: the emoji renders, the task, the shared loop, the adapter saved to OUT/motion_adapter.</summary>
public static class MotionAdapterTraining
{
    public static TrainingResult Run(string rendersDir, TrainingOptions options, MotionAdapterTrainingOptions motion,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default, Action<string>? log = null)
    {
        options.ThrowIfInvalid();
        using var task = new MotionAdapterTask(motion, options.Seed);
        // Renders are resampled to the clip size by the synthesiser; 4x the clip size (128 px for 32 px clips) is best.
        var first = Directory.Exists(rendersDir) ? Directory.EnumerateFiles(rendersDir, "*.png").FirstOrDefault() : null;
        int renderSize = first is null ? task.Pipeline.NativeSize : Math.Min(RgbImage.Load(first).Width, RgbImage.Load(first).Height);
        var data = new ImageFolderDataset(rendersDir, renderSize, CropMode.Random);
        log?.Invoke($"data: {data.Summary()}, renders {renderSize} px -> {motion.Frames}-frame clips at {task.Pipeline.NativeSize} px");
        log?.Invoke($"motion adapter: {task.ParameterCount:N0} trainable parameters (image UNet and text encoder frozen)");
        return new Trainer(task, data, options).Run(progress, cancellationToken);
    }
}
