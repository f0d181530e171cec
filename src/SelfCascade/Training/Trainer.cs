using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Training;

/// <summary>
/// The training loop shared by train-base and train-upsamplers: AdamW on fp32 trainable parameters, gradient
/// accumulation, seeded epoch order, caption dropout, gradient clipping, a CSV loss log and PNG plot, atomic
/// checkpoints every N steps (and at the end and on cancel), and exact resume.
/// <para>Exact resume: a checkpoint holds the trainable weights, AdamW's moments and step count, the task's extra
/// state (EMA) and the step. Everything random is derived from (seed, index) (<see cref="SeedStreams"/>): the data
/// order from (seed, epoch), crops and caption dropout from (seed, sample index), the task's noise and timesteps
/// from a generator seeded by (seed, micro-batch index). So a run resumed at step k takes the same steps
/// k+1.. as the uninterrupted run, bit for bit (same device, thread count and batch settings).</para>
/// </summary>
public sealed class Trainer
{
    public const string CheckpointFolder = "checkpoints";
    public const string LossCsv = "loss.csv";
    public const string LossPng = "loss.png";
    public const string TrainableGroup = "trainable";
    public const string OptimizerGroup = "optimizer";

    private readonly TrainingTask _task;
    private readonly ImageFolderDataset _data;
    private readonly TrainingOptions _options;

    public Trainer(TrainingTask task, ImageFolderDataset data, TrainingOptions options)
    {
        options.ThrowIfInvalid();
        _task = task; _data = data; _options = options;
    }

    public CheckpointStore Checkpoints => new(Path.Combine(_options.OutputDir, CheckpointFolder), _options.KeepCheckpoints);

    /// <summary>The settings a resumed run must share with the checkpoint: the loop's and the task's.</summary>
    public Dictionary<string, string> Fingerprint()
    {
        var inv = CultureInfo.InvariantCulture;
        var f = new Dictionary<string, string>
        {
            ["seed"] = _options.Seed.ToString(inv),
            ["batch"] = _options.BatchSize.ToString(inv),
            ["grad_accum"] = _options.GradientAccumulation.ToString(inv),
            ["shuffle"] = _options.Shuffle ? "true" : "false",
            ["caption_dropout"] = _options.CaptionDropout.ToString("R", inv),
            ["images"] = _data.Count.ToString(inv),
            ["image_size"] = _data.Size.ToString(inv),
            ["crop"] = _data.Crop.ToString().ToLowerInvariant(),
        };
        foreach (var (k, v) in _task.Fingerprint) f["task." + k] = v;
        return f;
    }

    /// <summary>
    /// Trains to <see cref="TrainingOptions.Steps"/>. On cancellation a checkpoint of the last finished step is
    /// written, then <see cref="OperationCanceledException"/> is thrown.
    /// </summary>
    public TrainingResult Run(IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var outDir = Path.GetFullPath(_options.OutputDir);
        Directory.CreateDirectory(outDir);
        var store = Checkpoints;
        var fingerprint = Fingerprint();

        foreach (var m in _task.FrozenModules)
        {
            m.eval();
            foreach (var p in m.parameters()) p.requires_grad = false;
        }
        var trainable = _task.TrainableParameters;
        foreach (var (name, p) in trainable)
        {
            if (p.dtype != ScalarType.Float32) throw new InvalidOperationException($"trainable parameter '{name}' is {p.dtype}; trainable weights must be fp32");
            p.requires_grad = true;
        }

        using var optimizer = new AdamW(trainable, _options.Beta1, _options.Beta2, _options.Epsilon, _options.WeightDecay);
        long startStep = 0;
        double secondsBefore = 0;
        if (_options.Resume)
        {
            var latest = store.Latest() ?? throw new CheckpointException(
                $"{store.Directory}: no checkpoint to resume from (run without --resume to start training)");
            using var ck = CheckpointStore.Open(latest.Path);
            CheckFingerprint(ck, fingerprint);
            LoadTrainable(ck, trainable);
            optimizer.LoadState(ck.Reader(OptimizerGroup), ck.State.Step);
            _task.LoadExtraState(ck);
            startStep = ck.State.Step;
            secondsBefore = ck.State.Seconds;
        }
        else if (store.List().Count > 0)
            throw new InvalidOperationException($"{outDir} already holds checkpoints: pass --resume to continue, or choose another output folder");

        using var log = new LossLog(Path.Combine(outDir, LossCsv), startStep);
        var order = new DataOrder(_data.Count, _options.Seed, _options.Shuffle);
        int total = _options.Steps;
        int accum = _options.GradientAccumulation;
        var clock = Stopwatch.StartNew();
        string? lastCheckpoint = null;
        long lastSaved = startStep;
        long step = startStep;
        double lastLoss = double.NaN;

        string SaveCheckpoint(long atStep)
        {
            progress?.Report(new TrainingProgress("checkpoint", atStep, total, lastLoss, Rate(atStep), TimeSpan.Zero));
            var groups = new Dictionary<string, IEnumerable<KeyValuePair<string, Tensor>>>
            {
                [TrainableGroup] = trainable.Select(t => new KeyValuePair<string, Tensor>(t.Name, t.Parameter)),
                [OptimizerGroup] = optimizer.StateTensors(),
            };
            foreach (var (k, v) in _task.ExtraState()) groups[k] = v;
            var state = new CheckpointState
            {
                Step = atStep, Seconds = secondsBefore + clock.Elapsed.TotalSeconds, Fingerprint = fingerprint,
                Values = new Dictionary<string, string>(_task.ExtraValues()),
            };
            var dir = store.Save(state, groups);
            LossPlot.Save(Path.Combine(outDir, LossPng), log.Records);
            lastSaved = atStep;
            return dir;
        }

        double Rate(long atStep) => atStep > startStep ? (atStep - startStep) / Math.Max(1e-9, clock.Elapsed.TotalSeconds) : 0;

        using var accumScale = ((double)accum).ToScalar();
        while (step < total)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                if (lastSaved != step || store.Latest()?.Step != step) SaveCheckpoint(step);
                cancellationToken.ThrowIfCancellationRequested();
            }
            long s = step + 1;
            double lr = _options.LearningRateAt(s);
            optimizer.ZeroGrad();
            double lossSum = 0;
            for (int micro = 0; micro < accum; micro++)
            {
                long microIndex = (s - 1) * accum + micro;
                using var scope = NewDisposeScope();
                using var batch = MakeBatch(order, microIndex * _options.BatchSize);
                using var generator = SeedStreams.Generator(_options.Seed, SeedStreams.StepNoise, microIndex);
                var loss = _task.Loss(batch, generator);
                if (accum > 1) loss.div(accumScale).backward();
                else loss.backward();
                lossSum += loss.detach().cpu().to(ScalarType.Float64).item<double>();
            }
            double stepLoss = lossSum / accum;
            if (!double.IsFinite(stepLoss))
                throw new InvalidOperationException($"the loss became {stepLoss} at step {s}; lower the learning rate (checkpoint of step {lastSaved} kept)");
            if (_options.MaxGradNorm > 0)
            {
                nn.utils.clip_grad_norm_(trainable.Select(t => t.Parameter), _options.MaxGradNorm);
            }
            optimizer.Step(lr);
            optimizer.ZeroGrad();
            _task.AfterOptimizerStep(s);
            step = s;
            lastLoss = stepLoss;
            log.Append(new LossRecord(s, stepLoss, lr, secondsBefore + clock.Elapsed.TotalSeconds));
            double rate = Rate(s);
            var eta = rate > 0 ? TimeSpan.FromSeconds((total - s) / rate) : TimeSpan.Zero;
            progress?.Report(new TrainingProgress("train", s, total, stepLoss, rate, eta));
            if (s % _options.CheckpointEvery == 0 || s == total) lastCheckpoint = SaveCheckpoint(s);
            if (_task.OnStepEnd(s, outDir)) progress?.Report(new TrainingProgress("preview", s, total, stepLoss, rate, eta));
        }
        if (lastSaved != step) lastCheckpoint = SaveCheckpoint(step);
        lastCheckpoint ??= store.Latest()?.Path;
        progress?.Report(new TrainingProgress("save", step, total, lastLoss, Rate(step), TimeSpan.Zero));
        _task.Finish(outDir);
        LossPlot.Save(Path.Combine(outDir, LossPng), log.Records);
        double seconds = clock.Elapsed.TotalSeconds;
        progress?.Report(new TrainingProgress("done", step, total, lastLoss, Rate(step), TimeSpan.Zero));
        return new TrainingResult(step, startStep, seconds, Rate(step), lastCheckpoint, log.Records.ToList());
    }

    /// <summary>The micro-batch starting at the run's sample <paramref name="firstSample"/>: images in the seeded
    /// order, cropped, captions after seeded dropout.</summary>
    public TrainingBatch MakeBatch(DataOrder order, long firstSample)
    {
        using var scope = NewDisposeScope();
        var images = new List<Tensor>();
        var captions = new List<string>();
        var indices = new List<long>();
        for (int i = 0; i < _options.BatchSize; i++)
        {
            long k = firstSample + i;
            var example = _data.Get(order[k], _options.Seed, k);
            images.Add(example.Image);
            bool drop = _options.CaptionDropout > 0 && SeedStreams.Uniform(_options.Seed, SeedStreams.CaptionDropout, k) < _options.CaptionDropout;
            captions.Add(drop ? "" : example.Caption);
            indices.Add(k);
        }
        var stacked = stack(images, 0).MoveToOuterDisposeScope();
        return new TrainingBatch(stacked, captions, indices);
    }

    private static void CheckFingerprint(Checkpoint ck, Dictionary<string, string> current)
    {
        var diffs = new List<string>();
        foreach (var key in ck.State.Fingerprint.Keys.Union(current.Keys).OrderBy(k => k, StringComparer.Ordinal))
        {
            ck.State.Fingerprint.TryGetValue(key, out var saved);
            current.TryGetValue(key, out var now);
            if (saved != now) diffs.Add($"{key}: checkpoint {saved ?? "(none)"}, now {now ?? "(none)"}");
        }
        if (diffs.Count > 0)
            throw new InvalidOperationException($"{ck.Directory}: cannot resume exactly with other settings: {string.Join("; ", diffs)}");
    }

    private static void LoadTrainable(Checkpoint ck, IReadOnlyList<(string Name, Parameter Parameter)> trainable)
    {
        var read = ck.Reader(TrainableGroup);
        var problems = new List<string>();
        using var noGrad = no_grad();
        foreach (var (name, p) in trainable)
        {
            using var t = read(name);
            if (t is null) { problems.Add($"missing {name}"); continue; }
            if (!t.shape.SequenceEqual(p.shape)) { problems.Add($"{name}: [{string.Join(",", t.shape)}] vs [{string.Join(",", p.shape)}]"); continue; }
            p.copy_(t);
        }
        if (problems.Count > 0)
            throw new CheckpointException($"{ck.Directory}: trainable weights do not fit the model: {string.Join("; ", problems.Take(10))}");
    }
}
