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
    /// <summary>Seeds the initial weights, the shuffling and the augmentation.</summary>
    public int Seed { get; init; }
    /// <summary>Random scale-and-shift crops (side fraction in [MinCropScale, 1]) and horizontal flips.</summary>
    public bool Augment { get; init; } = true;
    public double MinCropScale { get; init; } = 0.6;
    public bool HorizontalFlip { get; init; } = true;
    public int InputSize { get; init; } = 64;
    public int BaseChannels { get; init; } = 16;
    public int EmbeddingDim { get; init; } = 128;
}

/// <summary>One finished epoch: mean cross-entropy and training accuracy over its batches.</summary>
public sealed record FeatureNetEpoch(int Epoch, double Loss, double Accuracy);

/// <summary>The trained network (caller disposes) and its per-epoch history.</summary>
public sealed record FeatureNetTrainingResult(FeatureNet Net, IReadOnlyList<FeatureNetEpoch> History);

/// <summary>
/// Trains a <see cref="FeatureNet"/> as a classifier (e.g. which emoji design, or a caption word) with Adam and
/// cross-entropy, <c>L = -mean log softmax(z)_label</c>. Augmentation is one batched affine resample
/// (<c>grid_sample</c>, bilinear, border padding) of the preprocessed images: scale s ∈ [MinCropScale, 1] of the side,
/// a shift keeping the window inside the image, and an optional mirror. Deterministic for a seed on one thread count.
/// </summary>
public static class FeatureNetTrainer
{
    public static FeatureNetTrainingResult Train(IReadOnlyList<(RgbImage image, int label)> data, FeatureNetTrainOptions? options = null,
        IProgress<FeatureNetEpoch>? progress = null)
    {
        var o = options ?? new FeatureNetTrainOptions();
        if (data.Count == 0) throw new ArgumentException("no training images");
        if (data.Any(d => d.label < 0)) throw new ArgumentException("labels must be non-negative");
        if (o.Epochs < 1 || o.BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(options), "epochs and batch size must be positive");
        int classes = data.Max(d => d.label) + 1;
        var net = new FeatureNet(new FeatureNetConfig(classes, o.InputSize, o.BaseChannels, o.EmbeddingDim), o.Seed);
        try
        {
            using var inputs = net.Preprocess(data.Select(d => d.image).ToList());
            using var labels = tensor(data.Select(d => (long)d.label).ToArray());
            var history = Fit(net, inputs, labels, o, progress);
            net.eval();
            return new FeatureNetTrainingResult(net, history);
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }

    private static List<FeatureNetEpoch> Fit(FeatureNet net, Tensor inputs, Tensor labels, FeatureNetTrainOptions o, IProgress<FeatureNetEpoch>? progress)
    {
        var rng = new Random(o.Seed);
        using var optimizer = optim.Adam(net.parameters(), lr: o.LearningRate, weight_decay: o.WeightDecay);
        var history = new List<FeatureNetEpoch>();
        int n = (int)inputs.shape[0];
        net.train();
        for (int epoch = 0; epoch < o.Epochs; epoch++)
        {
            var order = Shuffle(rng, n);
            double lossSum = 0; long correct = 0;
            for (int start = 0; start < n; start += o.BatchSize)
            {
                using var scope = NewDisposeScope();
                var idx = tensor(order.Skip(start).Take(o.BatchSize).Select(i => (long)i).ToArray());
                var x = inputs.index_select(0, idx);
                if (o.Augment) x = AugmentBatch(x, rng, o.MinCropScale, o.HorizontalFlip);
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
        }
        return history;
    }

    /// <summary>
    /// Per-sample affine crop in normalised coordinates: <c>θ = [[±s, 0, tx], [0, s, ty]]</c>, s ∈ [minScale, 1],
    /// |t| ≤ 1 - s, so the sampled window is a sub-square of the image (mirrored when the sign is negative).
    /// </summary>
    public static Tensor AugmentBatch(Tensor x, Random rng, double minScale, bool flip)
    {
        using var scope = NewDisposeScope();
        int b = (int)x.shape[0];
        var theta = new float[b * 6];
        for (int i = 0; i < b; i++)
        {
            double s = minScale + (1 - minScale) * rng.NextDouble();
            double tx = (1 - s) * (2 * rng.NextDouble() - 1), ty = (1 - s) * (2 * rng.NextDouble() - 1);
            double sx = flip && rng.Next(2) == 1 ? -s : s;
            theta[i * 6 + 0] = (float)sx; theta[i * 6 + 2] = (float)tx;
            theta[i * 6 + 4] = (float)s; theta[i * 6 + 5] = (float)ty;
        }
        var grid = nn.functional.affine_grid(tensor(theta).reshape(b, 2, 3).to(x.dtype), x.shape, align_corners: false);
        var result = nn.functional.grid_sample(x, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Border, align_corners: false);
        return result.MoveToOuterDisposeScope();
    }

    private static int[] Shuffle(Random rng, int n)
    {
        var order = Enumerable.Range(0, n).ToArray();
        rng.Shuffle(order);
        return order;
    }
}
