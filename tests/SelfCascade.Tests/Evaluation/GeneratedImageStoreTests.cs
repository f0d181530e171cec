using SelfCascade.Evaluation;
using SelfCascade.Imaging;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Evaluation;

public sealed class GeneratedImageStoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-imgstore-").FullName;

    public GeneratedImageStoreTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void KeepsImageAndCostAndRejectsAnotherPromptOrAnUnsafeName()
    {
        var store = new GeneratedImageStore(_dir);
        var img = SyntheticImages.RandomShapes(new Random(1), 16);
        var prompt = new QualityPrompt("noto__cat", "cat", 3);
        store.Save("self-cascade+lite", 4, 7, prompt, img, 1.25, 512.5);
        var loaded = store.TryLoad("self-cascade+lite", 4, 7, prompt);
        Assert.NotNull(loaded);
        Assert.Equal(img.Pixels, loaded.Value.Image.Pixels);
        Assert.Equal(1.25, loaded.Value.Seconds);
        Assert.Equal(512.5, loaded.Value.PeakMiB);
        Assert.True(File.Exists(Path.Combine(_dir, "self-cascade+lite", "x4", "007.png")));
        Assert.Null(store.TryLoad("self-cascade+lite", 4, 7, prompt with { Seed = 4 }));
        Assert.Null(store.TryLoad("self-cascade+lite", 2, 7, prompt));
        Assert.Throws<ArgumentException>(() => store.PathOf("../x", 2, 0));
        Assert.Throws<ArgumentException>(() => store.PathOf("..", 2, 0));
        Assert.Throws<ArgumentException>(() => store.PathOf("a/b", 2, 0));
    }

    [Fact]
    public void BenchmarkReusesStoredImagesWithoutGenerating()
    {
        var store = new GeneratedImageStore(_dir);
        var prompts = Enumerable.Range(0, 4).Select(i => new QualityPrompt($"d{i}", $"design {i}", i)).ToList();
        var rng = new Random(2);
        var bases = prompts.Select(_ => SyntheticImages.RandomShapes(rng, 16, count: 1)).ToList();
        int calls = 0;
        RgbImage Gen(QualityPrompt p, int size) { calls++; return SyntheticImages.RandomShapes(new Random((int)p.Seed), size, count: 1); }
        var options = new QualityBenchmarkOptions { NativeSize = 16, Scales = [2], Fidelity = new(KidSubsetSize: 4, KidSubsets: 2), BootstrapResamples = 20 };
        var real = prompts.Select((_, i) => SyntheticImages.RandomShapes(new Random(100 + i), 32, count: 1)).ToList();
        using var net = new FeatureNet(new FeatureNetConfig(2, 16, 8, 16));
        using var x = new FeatureNetExtractor(net);
        var first = QualityBenchmark.Run(options, prompts, p => bases[(int)p.Seed], _ => real, [new QualityMethod("m", Gen)], x, store: store);
        Assert.Equal(4, calls);
        var second = QualityBenchmark.Run(options, prompts, p => throw new InvalidOperationException("base regenerated"), _ => real,
            [new QualityMethod("m", (_, _) => throw new InvalidOperationException("regenerated"))], x, store: store);
        Assert.Equal(first[0].Fd, second[0].Fd);
        Assert.Equal(first[0].SecondsPerImage, second[0].SecondsPerImage);
    }
}
