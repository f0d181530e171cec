using SelfCascade.Evaluation;
using SelfCascade.Imaging;
using SelfCascade.Tests.Support;
using static SelfCascade.Tests.Evaluation.SyntheticImages;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Evaluation;

/// <summary>The benchmark feature network's training recipe (train-feature-net): augmentation pieces, schedule, checkpoints, resume, ranks.</summary>
[Collection(AloneCollection.Name)]
public sealed class FeatureNetAugmentationTests
{
    public FeatureNetAugmentationTests() => TorchSetup.Ensure();

    private static readonly FeatureNetTrainOptions FullAugmentation = new()
    {
        InputSize = 32, BaseChannels = 8, EmbeddingDim = 32, BatchSize = 16, LearningRate = 3e-3, CosineSchedule = true, Seed = 3,
        MinCropScale = 0.7, MaxCropScale = 1.3, HorizontalFlip = false, Brightness = 0.1, Contrast = 0.2, Saturation = 0.2,
        BlurMaxSigma = 1.5, NoiseMaxStd = 0.05,
    };

    /// <summary>The tiny run: 8 designs at two sizes, the whole augmentation, cosine LR; checkpoints every epoch; it learns the designs.</summary>
    [Fact]
    public void TinyRunWithTheFullRecipeLearnsTheDesigns()
    {
        var designs = RandomSet(seed: 11, count: 8, size: 32);
        var data = Enumerable.Range(0, 4).SelectMany(_ => designs.Select((d, i) => (d, i)).Concat(designs.Select((d, i) => (ImageOps(d, 64), i)))).ToList();
        var saved = new List<int>();
        var result = FeatureNetTrainer.Train(data, FullAugmentation with { Epochs = 25 }, checkpoint: (_, epoch) => saved.Add(epoch));
        using var net = result.Net;
        var h = result.History;
        Assert.Equal(Enumerable.Range(1, 25), saved);
        Assert.True(h[^1].Loss < 0.5 * h[0].Loss, $"loss {string.Join(" ", h.Select(e => e.Loss.ToString("F3")))}");
        var acc = FeatureNetTrainer.Evaluate(net, designs.Select((d, i) => (d, i)).ToList());
        Assert.True(acc.Top1 >= 0.75, $"top-1 on the clean designs {acc.Top1:P0}");
        Assert.Equal(1.0, acc.Top5);
    }

    [Fact]
    public void ResumeRunsTheRemainingEpochsOnTheGivenNet()
    {
        var designs = RandomSet(seed: 12, count: 4, size: 32);
        var data = designs.Select((d, i) => (d, i)).ToList();
        var first = FeatureNetTrainer.Train(data, FullAugmentation with { Epochs = 2 });
        var resumed = FeatureNetTrainer.Train(data, FullAugmentation with { Epochs = 5, InitialNet = first.Net, StartEpoch = 2 });
        Assert.Same(first.Net, resumed.Net);
        Assert.Equal([2, 3, 4], resumed.History.Select(e => e.Epoch));
        first.Net.Dispose();
    }

    [Fact]
    public void ZoomOutShrinksTheImageOntoWhite()
    {
        using var x = -ones(1, 3, 16, 16); // black
        using var y = FeatureNetTrainer.AugmentBatch(x, new Random(0), minScale: 2.0, flip: false, maxScale: 2.0);
        // Scale 2 = a window twice the image's side: the black image covers a quarter of the area (an 8x8 square,
        // shifted at random but kept inside), the rest is white; bilinear resampling keeps the area.
        Assert.Equal(0.5, y.mean().item<float>(), 2);
        Assert.Equal(1f, y.max().item<float>(), 5);
        Assert.Equal(-1f, y.min().item<float>(), 5);
        Assert.True(y.lt(0).sum().item<long>() is >= 3 * 49 and <= 3 * 81, "about 8x8 dark pixels per channel");
    }

    [Fact]
    public void ColourJitterAndBlurKeepWhatTheyShould()
    {
        using var x = rand(4, 3, 16, 16) * 2 - 1;
        using var same = FeatureNetTrainer.ColourJitter(x, new Random(1), 0, 0, 0);
        Assert.True(same.allclose(x, 1e-5, 1e-5));
        using var flat = full(4, 3, 16, 16, 0.3f);
        using var flatBlur = FeatureNetTrainer.RandomBlur(flat, new Random(2), 1.5);
        Assert.True(flatBlur.allclose(flat, 1e-5, 1e-5)); // normalised kernels, replicate padding
        using var blurred = FeatureNetTrainer.RandomBlur(x, new Random(3), 1.5);
        Assert.True(blurred.var().item<float>() < x.var().item<float>());
        // Brightness only: each sample shifts by one constant (inside the clamp).
        using var mid = full(2, 3, 4, 4, 0f);
        using var bright = FeatureNetTrainer.ColourJitter(mid, new Random(4), 0.1, 0, 0);
        for (int i = 0; i < 2; i++) Assert.True((bright[i] - bright[i].mean()).abs().max().item<float>() < 1e-6);
    }

    [Fact]
    public void RanksCountTheLogitsAboveTheLabel()
    {
        using var net = new FeatureNet(new FeatureNetConfig(6, 16, 8, 16), seed: 5);
        using var inputs = rand(3, 3, 16, 16) * 2 - 1;
        using var logits = net.forward(inputs);
        int[] labels = [0, 3, 5];
        var ranks = FeatureNetTrainer.Ranks(net, inputs, labels);
        for (int i = 0; i < 3; i++)
        {
            var row = logits[i].data<float>().ToArray();
            Assert.Equal(row.Count(v => v > row[labels[i]]), ranks[i]);
        }
    }

    private static RgbImage ImageOps(RgbImage img, int size)
    {
        using var t = ImageTensors.ResizeAntialiased(img.ToTensor(), size, size);
        return RgbImage.FromDecoderOutput(t);
    }
}
