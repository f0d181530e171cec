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
}
