using System.Text.Json;
using SelfCascade.Imaging;
using SelfCascade.Tests.Support;
using static SelfCascade.Tests.Evaluation.SyntheticImages;

namespace SelfCascade.Tests.Cli;

/// <summary>The quality benchmark's smoke run (CI): every method and metric on a tiny model and a tiny dataset.</summary>
public sealed class BenchQualitySmokeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-bq-").FullName;
    public BenchQualitySmokeTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>A dataset folder in `selfcascade data`'s layout: shapes rendered at 32, 64, 128 px for train and test.</summary>
    private string MakeData()
    {
        var root = Path.Combine(_dir, "data");
        var designs = new List<object>();
        var rng = new Random(4);
        for (int i = 0; i < 12; i++)
        {
            var split = i < 8 ? "train" : "test";
            var id = $"shapes__design-{i:D2}";
            int seed = rng.Next();
            foreach (var size in new[] { 32, 64, 128 })
            {
                var dir = Path.Combine(root, "render", $"{size}", split);
                Directory.CreateDirectory(dir);
                RandomShapes(new Random(seed), size).SavePng(Path.Combine(dir, id + ".png"));
                File.WriteAllText(Path.Combine(dir, id + ".txt"), $"design {i}");
            }
            designs.Add(new { id, set = "shapes", name = $"design-{i:D2}", caption = $"design {i}", split, license = "CC0" });
        }
        File.WriteAllText(Path.Combine(root, "manifest.json"), JsonSerializer.Serialize(new { format = 1, designs }));
        return root;
    }

    [Fact]
    public void SmokeRunWritesTableGridAndPlot()
    {
        var model = TinyModelFolders.BuildSd(Path.Combine(_dir, "model"));
        var data = MakeData();
        var (code, output, err) = CliRunner.Run("bench-quality", "--model", model, "--data", data, "--prompts", "3", "--steps", "2",
            "--scales", "2", "--feature-net", Path.Combine(_dir, "fn.safetensors"), "--feature-epochs", "1",
            "--out", Path.Combine(_dir, "q.md"), "--grid", Path.Combine(_dir, "grid.png"), "--plot", Path.Combine(_dir, "plot.png"));
        Assert.True(code == 0, err);
        var md = File.ReadAllText(Path.Combine(_dir, "q.md"));
        foreach (var m in new[] { "direct", "attn-scale", "upscale-only", "self-cascade" })
            Assert.Contains($"| {m} | x2 | 64 | 3 |", md);
        Assert.Contains("trained here", md);
        Assert.True(File.Exists(Path.Combine(_dir, "fn.safetensors")));
        var grid = RgbImage.Load(Path.Combine(_dir, "grid.png"));
        Assert.True(grid.Width > 64 * 4);
        Assert.True(File.Exists(Path.Combine(_dir, "plot.png")));
        Assert.Contains("| self-cascade |", output);
    }
}
