using SelfCascade.Evaluation;
using SelfCascade.Imaging;
using SelfCascade.Tests.Support;
using static SelfCascade.Tests.Evaluation.SyntheticImages;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Evaluation;

[Collection(AloneCollection.Name)]
public sealed class FeatureNetTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-featnet-").FullName;

    public FeatureNetTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    private static readonly FeatureNetTrainOptions Small = new() { InputSize = 32, BaseChannels = 8, EmbeddingDim = 32, Epochs = 8, BatchSize = 16, Seed = 1 };

    /// <summary>Class 0: circles, class 1: squares; one to three shapes of random colours each.</summary>
    private static List<(RgbImage image, int label)> ShapeClasses(int seed, int perClass, int size = 32, bool single = false)
    {
        var rng = new Random(seed);
        var data = new List<(RgbImage, int)>();
        for (int i = 0; i < perClass; i++)
        {
            data.Add((RandomShapes(rng, size, kind: 0, count: single ? 1 : 0), 0));
            data.Add((RandomShapes(rng, size, kind: 1, count: single ? 1 : 0), 1));
        }
        return data;
    }

    [Fact]
    public void TrainingLowersTheLoss()
    {
        // The intended use: classify which design (16 prototypes, each seen in augmented crops).
        var designs = RandomSet(seed: 100, count: 16, size: 48);
        var data = Enumerable.Range(0, 64).Select(i => (designs[i % 16], i % 16)).ToList();
        using var result = new Disposer(FeatureNetTrainer.Train(data, new FeatureNetTrainOptions { InputSize = 48, Epochs = 10, BatchSize = 16, LearningRate = 3e-3 }));
        var h = result.Value.History;
        Assert.Equal(10, h.Count);
        Assert.True(h[^1].Loss < 0.6 * h[0].Loss, $"loss {string.Join(" ", h.Select(e => e.Loss.ToString("F3")))}");
    }

    [Fact]
    public void TrainedFeaturesSeparateClassesBetterThanRandomWeights()
    {
        // Circles vs squares, one shape of random colour, size and place: colour (what random features see) does not help.
        var train = ShapeClasses(seed: 2, perClass: 100, single: true);
        var test = ShapeClasses(seed: 3, perClass: 20, single: true);
        using var trained = new Disposer(FeatureNetTrainer.Train(train, Small with { Epochs = 30, BatchSize = 16, LearningRate = 3e-3 }));
        using var untrained = new FeatureNet(trained.Value.Net.Config, seed: Small.Seed);
        double accTrained = NearestCentroidAccuracy(new FeatureNetExtractor(trained.Value.Net), train, test);
        double accRandom = NearestCentroidAccuracy(new FeatureNetExtractor(untrained), train, test);
        double fisherTrained = FisherRatio(new FeatureNetExtractor(trained.Value.Net), test);
        double fisherRandom = FisherRatio(new FeatureNetExtractor(untrained), test);
        Assert.True(accTrained >= 0.9, $"held-out nearest-centroid accuracy {accTrained:F3} (random weights {accRandom:F3})");
        Assert.True(accTrained > accRandom + 0.2, $"trained {accTrained:F3} vs random {accRandom:F3}");
        Assert.True(fisherTrained > 5 * fisherRandom, $"Fisher ratio trained {fisherTrained:F3} vs random {fisherRandom:F3}");
    }

    [Fact]
    public void SameSeedSameNetworkAndSaveLoadKeepsFeatures()
    {
        var data = ShapeClasses(seed: 4, perClass: 8);
        var opts = Small with { Epochs = 2 };
        using var a = new Disposer(FeatureNetTrainer.Train(data, opts));
        using var b = new Disposer(FeatureNetTrainer.Train(data, opts));
        Assert.Equal(a.Value.History, b.Value.History);

        var path = Path.Combine(_dir, "featnet.safetensors");
        a.Value.Net.Save(path);
        using var loaded = FeatureNet.Load(path);
        Assert.Equal(a.Value.Net.Config, loaded.Config);
        var images = data.Select(d => d.image).ToList();
        using var fa = new FeatureNetExtractor(a.Value.Net).Extract(images);
        using var fb = new FeatureNetExtractor(loaded).Extract(images);
        using var fc = new FeatureNetExtractor(b.Value.Net, batchSize: 5).Extract(images);
        Assert.Equal(new long[] { images.Count, opts.EmbeddingDim }, fa.shape);
        Assert.Equal(ScalarType.Float64, fa.dtype);
        Assert.True(fa.equal(fb).all().item<bool>());
        Assert.True(fa.allclose(fc, 1e-6, 1e-6)); // batching does not change features
    }

    /// <summary>
    /// The epoch's data order is a function of (seed, epoch) alone, the same in every process: these values were
    /// recorded in another process. (With HashCode.Combine, randomised per process, they changed from run to run, and
    /// so did the trained network; the in-process test above cannot see that.)
    /// </summary>
    [Fact]
    public void TheEpochOrderIsTheSameInEveryProcess()
    {
        Assert.Equal([8, 9, 1, 0, 5, 3, 11, 2, 6, 7, 10, 4], FeatureNetTrainer.EpochOrder(0, 0, 12));
        Assert.Equal([4, 5, 6, 3, 11, 9, 7, 0, 2, 1, 10, 8], FeatureNetTrainer.EpochOrder(4, 1, 12));
        Assert.Equal([5, 11, 8, 6, 0, 4, 2, 10, 7, 3, 1, 9], FeatureNetTrainer.EpochOrder(4, 2, 12));
    }

    [Fact]
    public void InitialWeightsFollowTheSeed()
    {
        var config = new FeatureNetConfig(NumClasses: 4, InputSize: 16, BaseChannels: 8, EmbeddingDim: 16);
        using var a = new FeatureNet(config, seed: 7);
        using var b = new FeatureNet(config, seed: 7);
        using var c = new FeatureNet(config, seed: 8);
        var pa = a.state_dict(); var pb = b.state_dict(); var pc = c.state_dict();
        foreach (var key in pa.Keys) Assert.True(pa[key].equal(pb[key]).all().item<bool>(), key);
        Assert.False(pa["layers.0.conv.weight"].equal(pc["layers.0.conv.weight"]).all().item<bool>());
        Assert.True(pa["layers.2.norm.weight"].eq(1).all().item<bool>());
        Assert.True(pa["layers.2.norm.bias"].eq(0).all().item<bool>());
        double bound = 1 / Math.Sqrt(3 * 9);
        Assert.True(pa["layers.0.conv.weight"].abs().max().item<float>() <= bound);
    }

    [Fact]
    public void AnyImageSizeIsResizedToTheInput()
    {
        using var net = new FeatureNet(new FeatureNetConfig(NumClasses: 3, InputSize: 32, BaseChannels: 8, EmbeddingDim: 16));
        using var x = net.Preprocess([White(17, 40), RandomShapes(new Random(1), 128), RandomShapes(new Random(2), 32)]);
        Assert.Equal(new long[] { 3, 3, 32, 32 }, x.shape);
        using var logits = net.forward(x);
        Assert.Equal(new long[] { 3, 3 }, logits.shape);
        Assert.Throws<ArgumentOutOfRangeException>(() => new FeatureNet(new FeatureNetConfig(2, BaseChannels: 12)));
    }

    [Fact]
    public void AugmentationWithScaleOneAndNoFlipIsIdentity()
    {
        using var x = randn(2, 3, 16, 16);
        using var y = FeatureNetTrainer.AugmentBatch(x, new Random(0), minScale: 1.0, flip: false);
        Assert.True(x.allclose(y, 1e-5, 1e-5));
    }

    /// <summary>Share of test images whose feature is nearer its class's training centroid than the other's.</summary>
    private static double NearestCentroidAccuracy(IFeatureExtractor extractor, List<(RgbImage image, int label)> train, List<(RgbImage image, int label)> test)
    {
        using var scope = NewDisposeScope();
        var ftr = extractor.Extract(train.Select(d => d.image).ToList());
        var fte = extractor.Extract(test.Select(d => d.image).ToList());
        var ltr = tensor(train.Select(d => (long)d.label).ToArray());
        var lte = tensor(test.Select(d => (long)d.label).ToArray());
        var c0 = ftr[ltr.eq(0)].mean([0]);
        var c1 = ftr[ltr.eq(1)].mean([0]);
        var pred = ((fte - c1).square().sum(1) < (fte - c0).square().sum(1)).to(ScalarType.Int64);
        return pred.eq(lte).to(ScalarType.Float64).mean().item<double>();
    }

    /// <summary>‖μ0 - μ1‖² / (mean within-class variance, summed over dimensions): scale-free class separation.</summary>
    private static double FisherRatio(IFeatureExtractor extractor, List<(RgbImage image, int label)> data)
    {
        using var scope = NewDisposeScope();
        var f = extractor.Extract(data.Select(d => d.image).ToList());
        var l = tensor(data.Select(d => (long)d.label).ToArray());
        var f0 = f[l.eq(0)]; var f1 = f[l.eq(1)];
        var between = (f0.mean([0]) - f1.mean([0])).square().sum().item<double>();
        var within = (f0.var(0).sum() + f1.var(0).sum()).item<double>() / 2;
        return between / within;
    }

    private sealed class Disposer(FeatureNetTrainingResult value) : IDisposable
    {
        public FeatureNetTrainingResult Value { get; } = value;
        public void Dispose() => Value.Net.Dispose();
    }
}
