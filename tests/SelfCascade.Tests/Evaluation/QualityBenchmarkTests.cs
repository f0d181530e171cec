using SelfCascade.Evaluation;
using SelfCascade.Imaging;
using static SelfCascade.Tests.Evaluation.SyntheticImages;

namespace SelfCascade.Tests.Evaluation;

/// <summary>The benchmark's table ranks a repeating method below a faithful one on every metric it should.</summary>
public sealed class QualityBenchmarkTests(DesignFeatureNet fixture) : IClassFixture<DesignFeatureNet>
{
    private const int Native = 24;

    /// <summary>Nearest-neighbour enlargement of the base image (faithful composition, no repetition).</summary>
    private static RgbImage Enlarge(RgbImage b, int size)
    {
        var img = new RgbImage(size, size);
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                for (int c = 0; c < 3; c++) img.Pixels[(y * size + x) * 3 + c] = b[x * b.Width / size, y * b.Height / size, c];
        return img;
    }

    /// <summary>The base image tiled 2x2 (the repetition failure of direct high-resolution sampling).</summary>
    private static RgbImage Tile(RgbImage b, int size)
    {
        var small = Enlarge(b, size / 2);
        var img = new RgbImage(size, size);
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                for (int c = 0; c < 3; c++) img.Pixels[(y * size + x) * 3 + c] = small[x % (size / 2), y % (size / 2), c];
        return img;
    }

    [Fact]
    public void RepetitionShowsInEveryMetric()
    {
        var rng = new Random(9);
        var prompts = Enumerable.Range(0, 24).Select(i => new QualityPrompt($"d{i}", $"design {i}", i)).ToList();
        var bases = prompts.ToDictionary(p => p.Id, _ => RandomShapes(rng, Native, count: 1));
        var real = new Dictionary<int, IReadOnlyList<RgbImage>>();
        var methods = new[]
        {
            new QualityMethod("enlarge", (p, size) => Enlarge(bases[p.Id], size)),
            new QualityMethod("tile", (p, size) => Tile(bases[p.Id], size)),
        };
        using var extractor = new FeatureNetExtractor(fixture.Net);
        var rows = QualityBenchmark.Run(new QualityBenchmarkOptions { NativeSize = Native, Scales = [2], Fidelity = new(KidSubsetSize: 24, KidSubsets: 10) },
            prompts, p => bases[p.Id], size => real.TryGetValue(size, out var r) ? r : real[size] = bases.Values.Select(b => Enlarge(b, size)).ToList(),
            methods, extractor);
        Assert.Equal(2, rows.Count);
        var enlarge = rows.Single(r => r.Method == "enlarge");
        var tile = rows.Single(r => r.Method == "tile");
        Assert.Equal(0, enlarge.MeanExtraObjects);
        Assert.Equal(3, tile.MeanExtraObjects, 1);
        Assert.Equal(1.0, tile.ShareWithExtraObjects);
        Assert.True(enlarge.BaseMse < tile.BaseMse);
        Assert.True(enlarge.Fd < 1e-6 && tile.Fd > enlarge.Fd + 0.1, $"FD {enlarge.Fd} vs {tile.Fd}");
        var md = QualityBenchmark.ToMarkdown(rows);
        Assert.Contains("| tile | x2 | 48 | 24 |", md);
    }

    /// <summary>Ranks a stub classifier gives by prompt seed: seeds 0-1 top, 2 rank 3, 3 rank 7, 4 no class.</summary>
    private sealed class StubClassifier : IPromptClassifier
    {
        public List<string> Seen { get; } = [];
        public int[] CaptionRanks(IReadOnlyList<RgbImage> images, IReadOnlyList<string> captions)
        {
            Seen.AddRange(captions);
            return captions.Select(c => c switch { "design 0" or "design 1" => 0, "design 2" => 3, "design 3" => 7, _ => -1 }).ToArray();
        }
    }

    [Fact]
    public void PromptMatchAndIntervalsInTheRow()
    {
        var rng = new Random(5);
        var prompts = Enumerable.Range(0, 5).Select(i => new QualityPrompt($"d{i}", $"design {i}", i)).ToList();
        var bases = prompts.ToDictionary(p => p.Id, _ => RandomShapes(rng, Native, count: 1));
        IReadOnlyList<RgbImage> Real(int size) => bases.Values.Select(b => Enlarge(b, size)).ToList();
        var classifier = new StubClassifier();
        using var extractor = new FeatureNetExtractor(fixture.Net);
        var rows = QualityBenchmark.Run(
            new QualityBenchmarkOptions { NativeSize = Native, Scales = [2], Fidelity = new(KidSubsetSize: 5, KidSubsets: 4), BootstrapResamples = 200, BaseRow = true },
            prompts, p => bases[p.Id], Real, [new QualityMethod("tile", (p, size) => Tile(bases[p.Id], size))], extractor, classifier: classifier);
        Assert.Equal(["base", "tile"], rows.Select(r => r.Method));
        var tile = rows[1];
        // Four prompts have a class: top-1 2/4, top-5 3/4 (the fifth is left out).
        Assert.Equal(0.5, tile.PromptTop1, 12);
        Assert.Equal(0.75, tile.PromptTop5, 12);
        Assert.Equal(prompts.Select(p => p.Caption).Concat(prompts.Select(p => p.Caption)), classifier.Seen);
        foreach (var key in new[] { "extra", "mse", "top1", "top5", "spectrum_high" })
        {
            var ci = tile.Intervals[key];
            Assert.True(ci.Low <= ci.Estimate && ci.Estimate <= ci.High, $"{key}: {ci}");
        }
        Assert.True(tile.Intervals["top1"].High > tile.Intervals["top1"].Low);
        Assert.True(tile.Intervals["fd"].Low <= tile.Intervals["fd"].High);
        Assert.True(double.IsNaN(rows[0].MeanExtraObjects)); // the base row is not compared with itself
        var md = QualityBenchmark.ToMarkdown(rows);
        Assert.Contains("| tile | x2 | 48 | 5 | ", md);
        Assert.Contains("| base | x1 | 24 | 5 | - | - | - | - | ", md);
        Assert.Contains("| 50 % [", md);
    }
}
