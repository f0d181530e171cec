using System.Text.Json;
using SelfCascade.Data;
using SelfCascade.Imaging;

namespace SelfCascade.Tests.Data;

public sealed class DatasetBuilderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-data-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private DatasetSummary Build(int? limit = null, IProgress<DatasetProgress>? progress = null) => DatasetBuilder.Build(new DatasetOptions
    {
        OutputDir = Path.Combine(_dir, "out"),
        Sizes = [64, 32],
        IconsJsonFiles = [TestIconSet.Write(Path.Combine(_dir, "src"))],
        Limit = limit,
        NpmCommand = Path.Combine(_dir, "no-such-npm"), // offline: must not be needed
    }, progress);

    [Fact]
    public void BuildsImagesCaptionsManifestAndCard()
    {
        var reports = new List<DatasetProgress>();
        var summary = Build(progress: new SyncProgress(reports.Add));

        Assert.Equal([32, 64], summary.Sizes);
        var set = Assert.Single(summary.Sets);
        Assert.Equal("test", set.Set);
        Assert.Equal((9, 3, 10, 7), (set.Icons, set.Aliases, set.Designs, set.Rendered));
        Assert.Equal((1, 1), (set.ToneVariantsDropped, set.PlainAliasesSkipped));
        // Broken icons are counted and skipped, never fatal.
        Assert.Equal(["broken-body", "empty-body", "orphan-flip"], set.Broken.Select(b => b.Name));
        Assert.Contains("parse", set.Broken[0].Reason);
        Assert.Contains("empty", set.Broken[1].Reason);
        Assert.Equal(3, summary.BrokenCount);
        Assert.Equal(7, summary.Rendered);
        Assert.Equal(14, summary.ImageCount);
        Assert.Equal(7, summary.Count(Split.Train) + summary.Count(Split.Validation) + summary.Count(Split.Test));

        var root = summary.OutputDir;
        foreach (var e in summary.Entries)
        {
            Assert.Equal(DatasetSplit.Of(e.Caption), e.Split);
            Assert.Equal("MIT", e.License);
            foreach (var size in new[] { 32, 64 })
            {
                var png = Path.Combine(root, "render", size.ToString(), DatasetSplit.Name(e.Split), $"test__{e.Name}.png");
                var img = RgbImage.Load(png);
                Assert.Equal((size, size), (img.Width, img.Height));
                Assert.Equal(e.Caption, File.ReadAllText(Path.ChangeExtension(png, ".txt")));
            }
        }
        var circle = summary.Entries.Single(e => e.Name == "red-circle");
        Assert.Equal(("test__red-circle", "red circle"), (circle.Id, circle.Caption));
        var red = RgbImage.Load(Path.Combine(root, DatasetSummary.ImagePath(32, circle.Split, circle.Id)));
        Assert.Equal(new byte[] { 255, 255, 255 }, new[] { red[0, 0, 0], red[0, 0, 1], red[0, 0, 2] });
        Assert.True(red[16, 16, 0] > 250 && red[16, 16, 1] < 5 && red[16, 16, 2] < 5);
        Assert.Equal(14, Directory.GetFiles(Path.Combine(root, "render"), "*.png", SearchOption.AllDirectories).Length);
        Assert.DoesNotContain(Directory.GetFiles(root, "*", SearchOption.AllDirectories), f => f.Contains(".tmp-") || f.Contains("broken-body") || f.Contains("waving-hand-dark"));

        // manifest.json: one entry per rendered design, the set's licence and counts.
        var entries = DatasetManifest.ReadEntries(summary.ManifestPath);
        Assert.Equal(summary.Entries, entries);
        Assert.Equal(["blue-square", "left-half", "red-circle", "right-half", "traffic-light", "waving-hand", "wide-bar"], entries.Select(e => e.Name));
        using (var doc = JsonDocument.Parse(File.ReadAllText(summary.ManifestPath)))
        {
            var m = doc.RootElement;
            Assert.Equal(DatasetSplit.Rule, m.GetProperty("split_rule").GetString());
            Assert.Equal(7, m.GetProperty("counts").GetProperty("designs").GetInt32());
            Assert.Equal(3, m.GetProperty("counts").GetProperty("broken").GetInt32());
            var s = m.GetProperty("sets")[0];
            Assert.Equal("MIT", s.GetProperty("license").GetProperty("spdx").GetString());
            Assert.Equal("https://example.org/shapes/LICENSE", s.GetProperty("license").GetProperty("url").GetString());
            Assert.Equal("Test Author", s.GetProperty("author").GetString());
            Assert.Equal(3, s.GetProperty("broken").GetArrayLength());
        }

        // DATASET_CARD.md: attribution, licence, rules, counts per split and size.
        var card = File.ReadAllText(summary.CardPath);
        Assert.Contains("| `test` | Test Shapes | [Test Author](https://example.org/shapes) | [MIT License (MIT)](https://example.org/shapes/LICENSE) |", card);
        Assert.Contains("| `test` | 9 | 3 | 10 | 7 | 3 | 1 | 1 |", card);
        Assert.Contains("| split | 32 px | 64 px |", card);
        Assert.Contains($"| train | {summary.Count(Split.Train)} | {summary.Count(Split.Train)} |", card);
        Assert.Contains($"| test | {summary.Count(Split.Test)} | {summary.Count(Split.Test)} |", card);
        Assert.Contains("| total | 7 | 7 |", card);
        Assert.Contains(DatasetSplit.Rule, card);
        Assert.Contains("`test__broken-body`", card);
        Assert.DoesNotContain("Partial build", card);

        Assert.Equal(10, reports.Count(r => r.Phase == "render"));
        Assert.Equal(1.0, reports.Last().Fraction);
    }

    [Fact]
    public void LimitRendersTheFirstDesignsAndRebuildClearsOldImages()
    {
        Build();
        var summary = Build(limit: 2);
        Assert.Equal(["blue-square"], summary.Entries.Select(e => e.Name)); // the 2nd design, broken-body, is skipped
        Assert.Equal(["broken-body"], summary.Sets[0].Broken.Select(b => b.Name));
        Assert.Equal(2, Directory.GetFiles(Path.Combine(summary.OutputDir, "render"), "*.png", SearchOption.AllDirectories).Length);
        Assert.Contains("--limit 2", File.ReadAllText(summary.CardPath));
    }

    [Fact]
    public void BadOptionsAreRejected()
    {
        var icons = TestIconSet.Write(Path.Combine(_dir, "src"));
        Assert.Throws<ArgumentException>(() => DatasetBuilder.Build(new DatasetOptions { OutputDir = _dir, Sizes = [], IconsJsonFiles = [icons] }));
        Assert.Throws<ArgumentException>(() => DatasetBuilder.Build(new DatasetOptions { OutputDir = _dir, Sizes = [0], IconsJsonFiles = [icons] }));
        Assert.Throws<ArgumentException>(() => DatasetBuilder.Build(new DatasetOptions { OutputDir = _dir, Limit = 0, IconsJsonFiles = [icons] }));
        Assert.Throws<ArgumentException>(() => DatasetBuilder.Build(new DatasetOptions { OutputDir = _dir, IconsJsonFiles = [icons, icons] }));
        Assert.Throws<FileNotFoundException>(() => DatasetBuilder.Build(new DatasetOptions { OutputDir = _dir, IconsJsonFiles = [Path.Combine(_dir, "none.json")] }));
    }

    [Fact]
    public void CancellationStopsTheBuild()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => DatasetBuilder.Build(new DatasetOptions
        {
            OutputDir = Path.Combine(_dir, "out"), Sizes = [32], IconsJsonFiles = [TestIconSet.Write(Path.Combine(_dir, "src"))],
        }, null, cts.Token));
    }

    /// <summary>Reports synchronously (System.Progress posts to the thread pool).</summary>
    private sealed class SyncProgress(Action<DatasetProgress> report) : IProgress<DatasetProgress>
    {
        public void Report(DatasetProgress value) => report(value);
    }
}
