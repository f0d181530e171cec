using SelfCascade.Imaging;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Evaluation;

/// <summary>Training settings for <see cref="FeatureNetTrainer"/>.</summary>
public sealed record FeatureNetTrainOptions
{
    public int Epochs { get; init; } = 20;
    public int BatchSize { get; init; } = 32;
    public double LearningRate { get; init; } = 3e-3;
    public double WeightDecay { get; init; }
    /// <summary>Cosine decay of the learning rate to zero over <see cref="Epochs"/> (per batch); false = constant.</summary>
    public bool CosineSchedule { get; init; }
    /// <summary>Seeds the initial weights, the shuffling and the augmentation.</summary>
    public int Seed { get; init; }
    /// <summary>Random scale-and-shift crops (side fraction in [MinCropScale, MaxCropScale]) and horizontal flips.
    /// A fraction above 1 zooms out: the object shrinks on a white surround.</summary>
    public bool Augment { get; init; } = true;
    public double MinCropScale { get; init; } = 0.6;
    public double MaxCropScale { get; init; } = 1.0;
    public bool HorizontalFlip { get; init; } = true;
    /// <summary>Photometric augmentation (all 0 = off): brightness shift ±b, contrast and saturation factors 1 ± c / 1 ± s.</summary>
    public double Brightness { get; init; }
    public double Contrast { get; init; }
    public double Saturation { get; init; }
    /// <summary>Gaussian blur with σ ~ U(0, BlurMaxSigma) input pixels on a random half of the batch; 0 = off.</summary>
    public double BlurMaxSigma { get; init; }
    /// <summary>Additive Gaussian noise with std ~ U(0, NoiseMaxStd) (in the [-1, 1] input range); 0 = off.</summary>
    public double NoiseMaxStd { get; init; }
    public int InputSize { get; init; } = 64;
    public int BaseChannels { get; init; } = 16;
    public int EmbeddingDim { get; init; } = 128;
    /// <summary>Start from this network (a checkpoint) instead of fresh weights; its config wins over the shape options.</summary>
    public FeatureNet? InitialNet { get; init; }
    /// <summary>Epochs already done by <see cref="InitialNet"/> (resume: the schedule and the random streams continue from there).</summary>
    public int StartEpoch { get; init; }
}

/// <summary>One finished epoch: mean cross-entropy and training accuracy over its batches.</summary>
public sealed record FeatureNetEpoch(int Epoch, double Loss, double Accuracy);

/// <summary>The trained network (caller disposes) and its per-epoch history.</summary>
public sealed record FeatureNetTrainingResult(FeatureNet Net, IReadOnlyList<FeatureNetEpoch> History);

/// <summary>Top-1 and top-5 accuracy of a classifier over a labelled set.</summary>
public sealed record ClassifierAccuracy(int Count, double Top1, double Top5);

/// <summary>
/// Trains a <see cref="FeatureNet"/> as a classifier (e.g. which emoji design, or a caption word) with Adam and
/// cross-entropy, <c>L = -mean log softmax(z)_label</c>. Augmentation, per batch on the preprocessed images: one
/// affine resample (<c>grid_sample</c>, bilinear, white outside the image) with scale s ∈ [MinCropScale, MaxCropScale]
/// of the side, a shift keeping the object inside and an optional mirror; then brightness/contrast/saturation
/// jitter, Gaussian blur and additive noise. Deterministic for a seed on one thread count.
/// </summary>
public static class FeatureNetTrainer
{
    public static FeatureNetTrainingResult Train(IReadOnlyList<(RgbImage image, int label)> data, FeatureNetTrainOptions? options = null,
        IProgress<FeatureNetEpoch>? progress = null, Action<FeatureNet, int>? checkpoint = null)
    {
        var o = options ?? new FeatureNetTrainOptions();
        if (data.Count == 0) throw new ArgumentException("no training images");
        if (data.Any(d => d.label < 0)) throw new ArgumentException("labels must be non-negative");
        if (o.Epochs < 1 || o.BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(options), "epochs and batch size must be positive");
        if (o.StartEpoch < 0 || o.StartEpoch > o.Epochs) throw new ArgumentOutOfRangeException(nameof(options), "StartEpoch must lie in [0, Epochs]");
        int classes = data.Max(d => d.label) + 1;
        var net = o.InitialNet ?? new FeatureNet(new FeatureNetConfig(classes, o.InputSize, o.BaseChannels, o.EmbeddingDim), o.Seed);
        if (net.Config.NumClasses < classes) throw new ArgumentException($"the initial network has {net.Config.NumClasses} classes, the data {classes}");
        try
        {
            using var inputs = net.Preprocess(data.Select(d => d.image).ToList());
            using var labels = tensor(data.Select(d => (long)d.label).ToArray());
            var history = Fit(net, inputs, labels, o, progress, checkpoint);
            net.eval();
            return new FeatureNetTrainingResult(net, history);
        }
        catch
        {
            if (o.InitialNet is null) net.Dispose();
            throw;
        }
    }

    private static List<FeatureNetEpoch> Fit(FeatureNet net, Tensor inputs, Tensor labels, FeatureNetTrainOptions o,
        IProgress<FeatureNetEpoch>? progress, Action<FeatureNet, int>? checkpoint)
    {
        var history = new List<FeatureNetEpoch>();
        using var optimizer = optim.Adam(net.parameters(), lr: o.LearningRate, weight_decay: o.WeightDecay);
        int n = (int)inputs.shape[0];
        int batchesPerEpoch = (n + o.BatchSize - 1) / o.BatchSize;
        long totalBatches = (long)batchesPerEpoch * o.Epochs;
        net.train();
        for (int epoch = o.StartEpoch; epoch < o.Epochs; epoch++)
        {
            var rng = EpochRandom(o.Seed, epoch);
            using var generator = new Generator((ulong)(o.Seed * 1000003L + epoch), CPU);
            var order = Shuffle(rng, n);
            double lossSum = 0; long correct = 0;
            for (int b = 0, start = 0; start < n; b++, start += o.BatchSize)
            {
                using var scope = NewDisposeScope();
                if (o.CosineSchedule)
                {
                    double progressFraction = ((long)epoch * batchesPerEpoch + b) / (double)totalBatches;
                    foreach (var group in optimizer.ParamGroups) group.LearningRate = o.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * progressFraction));
                }
                var idx = tensor(order.Skip(start).Take(o.BatchSize).Select(i => (long)i).ToArray());
                var x = inputs.index_select(0, idx);
                if (o.Augment) x = Augment(x, rng, generator, o);
                var y = labels.index_select(0, idx);
                optimizer.zero_grad();
                var logits = net.forward(x);
                var loss = nn.functional.cross_entropy(logits, y);
                loss.backward();
                optimizer.step();
                lossSum += loss.item<float>() * idx.shape[0];
                correct += logits.argmax(1).eq(y).sum().item<long>();
            }
            var record = new FeatureNetEpoch(epoch, lossSum / n, correct / (double)n);
            history.Add(record);
            progress?.Report(record);
            if (checkpoint is not null)
            {
                net.eval();
                checkpoint(net, epoch + 1);
                net.train();
            }
        }
        return history;
    }

    /// <summary>The whole augmentation of <see cref="FeatureNetTrainOptions"/> on a (B, 3, S, S) batch in [-1, 1].</summary>
    public static Tensor Augment(Tensor x, Random rng, Generator generator, FeatureNetTrainOptions o)
    {
        using var scope = NewDisposeScope();
        var y = AugmentBatch(x, rng, o.MinCropScale, o.HorizontalFlip, o.MaxCropScale);
        if (o.Brightness > 0 || o.Contrast > 0 || o.Saturation > 0) y = ColourJitter(y, rng, o.Brightness, o.Contrast, o.Saturation);
        if (o.BlurMaxSigma > 0) y = RandomBlur(y, rng, o.BlurMaxSigma);
        if (o.NoiseMaxStd > 0)
        {
            int b = (int)y.shape[0];
            var std = tensor(Enumerable.Range(0, b).Select(_ => (float)(o.NoiseMaxStd * rng.NextDouble())).ToArray()).reshape(b, 1, 1, 1);
            y = y + randn(y.shape, generator: generator) * std;
        }
        return y.clamp(-1, 1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Per-sample affine crop in normalised coordinates: <c>θ = [[±s, 0, tx], [0, s, ty]]</c>, s ∈ [minScale, maxScale],
    /// |t| ≤ |1 - s|: for s ≤ 1 the sampled window is a sub-square of the image (mirrored when the sign is negative); for
    /// s &gt; 1 the image shrinks inside a white surround (the renders' background).
    /// </summary>
    public static Tensor AugmentBatch(Tensor x, Random rng, double minScale, bool flip, double maxScale = 1.0)
    {
        using var scope = NewDisposeScope();
        int b = (int)x.shape[0];
        var theta = new float[b * 6];
        for (int i = 0; i < b; i++)
        {
            double s = minScale + (maxScale - minScale) * rng.NextDouble();
            double room = Math.Abs(1 - s);
            double tx = room * (2 * rng.NextDouble() - 1), ty = room * (2 * rng.NextDouble() - 1);
            double sx = flip && rng.Next(2) == 1 ? -s : s;
            theta[i * 6 + 0] = (float)sx; theta[i * 6 + 2] = (float)tx;
            theta[i * 6 + 4] = (float)s; theta[i * 6 + 5] = (float)ty;
        }
        var grid = nn.functional.affine_grid(tensor(theta).reshape(b, 2, 3).to(x.dtype), x.shape, align_corners: false);
        Tensor result = maxScale <= 1.0
            ? nn.functional.grid_sample(x, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Border, align_corners: false)
            // Zero padding of (x - 1) is white padding of x (white = +1).
            : nn.functional.grid_sample(x - 1, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Zeros, align_corners: false) + 1;
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>In unit range u = (x + 1) / 2, per sample: u ← gray + (1 ± s)(u - gray); u ← mean + (1 ± c)(u - mean); u ← u ± b.</summary>
    public static Tensor ColourJitter(Tensor x, Random rng, double brightness, double contrast, double saturation)
    {
        using var scope = NewDisposeScope();
        int b = (int)x.shape[0];
        Tensor Factors(double amplitude, double centre) =>
            tensor(Enumerable.Range(0, b).Select(_ => (float)(centre + amplitude * (2 * rng.NextDouble() - 1))).ToArray()).reshape(b, 1, 1, 1);
        var sat = Factors(saturation, 1); var con = Factors(contrast, 1); var bri = Factors(brightness, 0);
        var u = (x + 1) / 2;
        var gray = (u[.., 0..1] * 0.299 + u[.., 1..2] * 0.587 + u[.., 2..3] * 0.114);
        u = gray + sat * (u - gray);
        var mean = u.mean([1, 2, 3], keepdim: true);
        u = (mean + con * (u - mean) + bri).clamp(0, 1);
        return (u * 2 - 1).MoveToOuterDisposeScope();
    }

    /// <summary>Separable Gaussian blur, σ ~ U(0, maxSigma) on a random half of the batch (σ = 0: unchanged), replicate padding.</summary>
    public static Tensor RandomBlur(Tensor x, Random rng, double maxSigma)
    {
        using var scope = NewDisposeScope();
        int b = (int)x.shape[0], c = (int)x.shape[1], h = (int)x.shape[2], w = (int)x.shape[3];
        int radius = Math.Max(1, (int)Math.Ceiling(2.5 * maxSigma));
        int k = 2 * radius + 1;
        var kernels = new float[b * k];
        for (int i = 0; i < b; i++)
        {
            double sigma = rng.Next(2) == 1 ? maxSigma * rng.NextDouble() : 0;
            if (sigma < 1e-3) { kernels[i * k + radius] = 1; continue; }
            double sum = 0;
            for (int j = -radius; j <= radius; j++) sum += Math.Exp(-j * j / (2 * sigma * sigma));
            for (int j = -radius; j <= radius; j++) kernels[i * k + j + radius] = (float)(Math.Exp(-j * j / (2 * sigma * sigma)) / sum);
        }
        var kernel = tensor(kernels).reshape(b, 1, k).repeat_interleave(c, 0).to(x.dtype); // (B*C, 1, k)
        var flat = x.reshape(1, b * c, h, w);
        flat = nn.functional.pad(flat, [radius, radius, radius, radius], PaddingModes.Replicate);
        flat = nn.functional.conv2d(flat, kernel.reshape(b * c, 1, k, 1), groups: b * c);
        flat = nn.functional.conv2d(flat, kernel.reshape(b * c, 1, 1, k), groups: b * c);
        return flat.reshape(b, c, h, w).MoveToOuterDisposeScope();
    }

    /// <summary>Top-1 and top-5 accuracy of the network's head on labelled images (any size; preprocessed by the net).</summary>
    public static ClassifierAccuracy Evaluate(FeatureNet net, IReadOnlyList<(RgbImage image, int label)> data, int batchSize = 64)
    {
        if (data.Count == 0) return new ClassifierAccuracy(0, double.NaN, double.NaN);
        using var noGrad = no_grad();
        net.eval();
        long top1 = 0, top5 = 0;
        for (int start = 0; start < data.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var batch = data.Skip(start).Take(batchSize).ToList();
            var ranks = Ranks(net, net.Preprocess(batch.Select(d => d.image).ToList()), batch.Select(d => d.label).ToArray());
            top1 += ranks.Count(r => r == 0);
            top5 += ranks.Count(r => r < 5);
        }
        return new ClassifierAccuracy(data.Count, top1 / (double)data.Count, top5 / (double)data.Count);
    }

    /// <summary>For each input, the rank (0 = top) of its label among the head's logits: the number of classes scored strictly higher.</summary>
    public static int[] Ranks(FeatureNet net, Tensor inputs, IReadOnlyList<int> labels)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var logits = net.forward(inputs);
        var own = logits.gather(1, tensor(labels.Select(l => (long)l).ToArray()).reshape(-1, 1));
        var higher = logits.gt(own).sum(1);
        return higher.data<long>().Select(v => (int)v).ToArray();
    }

    /// <summary>
    /// The epoch's random stream (data order, then augmentation draws): one per epoch, so a resumed run draws what the
    /// uninterrupted one would have, and a function of (seed, epoch) alone. A fixed integer mix: HashCode.Combine,
    /// used before, is randomised per process, which made the data order, and so the trained network, differ from
    /// run to run (a test's learned accuracy ranged 0.725-1.0 across processes).
    /// </summary>
    public static Random EpochRandom(long seed, int epoch) => new(unchecked((int)(seed * 1000003L + epoch * 7919L)));

    /// <summary>The epoch's data order: a permutation of 0..n-1 drawn first from <see cref="EpochRandom"/>.</summary>
    public static int[] EpochOrder(long seed, int epoch, int n) => Shuffle(EpochRandom(seed, epoch), n);

    private static int[] Shuffle(Random rng, int n)
    {
        var order = Enumerable.Range(0, n).ToArray();
        rng.Shuffle(order);
        return order;
    }
}
