using System.Text.Json;
using SelfCascade.Data;
using SelfCascade.Evaluation;
using SelfCascade.Tests.Support;
using static SelfCascade.Tests.Evaluation.SyntheticImages;

namespace SelfCascade.Tests.Cli;

/// <summary>
/// bench-quality --split train (prompts the model learned, train renders as the real sets, the prompt list written
/// beside the table) with a feature net from train-feature-net --split train; a net of other captions is refused.
/// </summary>
public sealed class BenchQualitySplitTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-bqs-").FullName;
    public BenchQualitySplitTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>
    /// `selfcascade data`'s layout: 10 train designs over 6 captions (two sets share four captions) rendered at 32 and
    /// 64 px; 3 test designs rendered at 32 px only, so a run at 64 px can only have taken its real set from train.
    /// </summary>
    private (string Root, List<DatasetEntry> Train) MakeData()
    {
        var root = Path.Combine(_dir, "data");
        var designs = new List<object>();
        var train = new List<DatasetEntry>();
        var rng = new Random(7);
        void Add(string set, string name, string caption, string split, int[] sizes)
        {
            var id = $"{set}__{name}";
            int seed = rng.Next();
            foreach (var size in sizes)
            {
                var dir = Path.Combine(root, "render", $"{size}", split);
                Directory.CreateDirectory(dir);
                RandomShapes(new Random(seed), size).SavePng(Path.Combine(dir, id + ".png"));
                File.WriteAllText(Path.Combine(dir, id + ".txt"), caption);
            }
            designs.Add(new { id, set, name, caption, split, license = "CC0" });
            if (split == "train") train.Add(new DatasetEntry(id, set, name, caption, Split.Train, "CC0"));
        }
        for (int i = 0; i < 6; i++) Add("fluent", $"d{i}", $"design {i}", "train", [32, 64]);
        for (int i = 0; i < 4; i++) Add("noto", $"d{i}", $"design {i}", "train", [32, 64]);
        for (int i = 0; i < 3; i++) Add("fluent", $"t{i}", $"unseen {i}", "test", [32]);
        File.WriteAllText(Path.Combine(root, "manifest.json"), JsonSerializer.Serialize(new { format = 1, designs }));
        return (root, train.OrderBy(e => e.Id, StringComparer.Ordinal).ToList());
    }

    [Fact]
    public void TrainSplitRunUsesTrainCaptionsTrainRendersAndATrainSplitNet()
    {
        var (data, train) = MakeData();
        var net = Path.Combine(_dir, "train-net.safetensors");
        var (code, _, err) = CliRunner.Run("train-feature-net", "--data", data, "--split", "train", "--sizes", "32",
            "--held-out-source", "64", "--epochs", "1", "--batch", "8", "--input-size", "16", "--checkpoint-every", "0", "--out", net);
        Assert.True(code == 0, err);
        using (var loaded = FeatureNet.Load(net))
            Assert.Equal(train.Select(e => e.Caption).Distinct().Order(StringComparer.Ordinal), loaded.ClassNames!);

        var outMd = Path.Combine(_dir, "q-train.md");
        (code, var output, err) = CliRunner.Run("bench-quality", "--model", TinyModelFolders.BuildSd(Path.Combine(_dir, "model")),
            "--data", data, "--split", "train", "--prompts", "4", "--steps", "2", "--scales", "2", "--methods", "self-cascade",
            "--bootstrap", "10", "--feature-net", net, "--out", outMd);
        Assert.True(code == 0, err);
        // The prompt list beside the table: four train designs spread over the split, one per caption.
        var expected = QualityBenchmarkRunner.SelectPrompts(train, Split.Train, 4).Select(p => p.Caption).ToList();
        Assert.Equal(4, expected.Distinct().Count());
        Assert.Equal(expected, File.ReadAllLines(Path.Combine(_dir, "q-train.prompts.txt")));
        var md = File.ReadAllText(outMd);
        Assert.Contains("4 train-split prompts", md);
        // x2 = 64 px: only the train split has 64 px renders. Prompt match is measured (a number, not "-").
        var row = md.Split('\n').Single(l => l.StartsWith("| self-cascade | x2 | 64 | 4 |", StringComparison.Ordinal));
        var cells = row.Split('|', StringSplitOptions.TrimEntries);
        Assert.Matches(@"^\d+ %", cells[14]);
        Assert.Contains("| self-cascade |", output);
    }

    /// <summary>Resuming a finished run trains nothing and re-measures and re-exports (it crashed on the empty history).</summary>
    [Fact]
    public void ResumingAFinishedFeatureNetRunReMeasuresAndExports()
    {
        var (data, _) = MakeData();
        var net = Path.Combine(_dir, "net.safetensors");
        string[] args = ["train-feature-net", "--data", data, "--split", "train", "--sizes", "32", "--held-out-source", "64",
            "--epochs", "1", "--batch", "8", "--input-size", "16", "--checkpoint-every", "1", "--out", net];
        var (code, first, err) = CliRunner.Run(args);
        Assert.True(code == 0, err);
        var export = Path.Combine(_dir, "held-out.safetensors");
        (code, var again, err) = CliRunner.Run([.. args, "--resume", "--export-held-out", export, "--export-count", "4"]);
        Assert.True(code == 0, err);
        Assert.Contains("resuming at epoch 1", err);
        Assert.DoesNotContain("epoch 1/1:", err);
        Assert.Contains("resumed after its last epoch: no epoch trained in this run", again);
        // The same weights measure the same accuracies.
        static IEnumerable<string> Rows(string md) => md.Split('\n').Where(l => l.StartsWith("| training renders", StringComparison.Ordinal) || l.StartsWith("| held out", StringComparison.Ordinal));
        Assert.Equal(Rows(first), Rows(again));
        Assert.True(File.Exists(export));
    }

    [Fact]
    public void ANetOfOtherCaptionsIsRefusedNamingTheFirstMissingPrompt()
    {
        var (data, train) = MakeData();
        // A net whose classes are the test captions (as train-feature-net --split test makes).
        var net = Path.Combine(_dir, "test-net.safetensors");
        using (var fn = new FeatureNet(new FeatureNetConfig(3, InputSize: 16)) { ClassNames = ["unseen 0", "unseen 1", "unseen 2"] })
            fn.Save(net);
        var (code, _, err) = CliRunner.Run("bench-quality", "--model", TinyModelFolders.BuildSd(Path.Combine(_dir, "model")),
            "--data", data, "--split", "train", "--prompts", "3", "--steps", "2", "--scales", "2", "--methods", "self-cascade",
            "--feature-net", net, "--out", Path.Combine(_dir, "q.md"));
        Assert.Equal(1, code);
        var first = QualityBenchmarkRunner.SelectPrompts(train, Split.Train, 3)[0];
        Assert.StartsWith("error: ", err);
        Assert.Contains($"'{first.Caption}'", err);
        Assert.Contains("train-feature-net --split train", err);
        Assert.False(File.Exists(Path.Combine(_dir, "q.md")));
    }

    [Fact]
    public void PromptsOnlyWritesTheListWithoutLoadingAModel()
    {
        var (data, train) = MakeData();
        var outMd = Path.Combine(_dir, "sub", "q.md");
        Directory.CreateDirectory(Path.GetDirectoryName(outMd)!);
        var (code, output, err) = CliRunner.Run("bench-quality", "--model", Path.Combine(_dir, "no-such-model"), "--data", data,
            "--split", "train", "--prompts", "5", "--prompts-only", "--out", outMd);
        Assert.True(code == 0, err);
        var list = Path.Combine(_dir, "sub", "q.prompts.txt");
        Assert.Equal(list, output.Trim());
        Assert.Equal(QualityBenchmarkRunner.SelectPrompts(train, Split.Train, 5).Select(p => p.Caption), File.ReadAllLines(list));
        Assert.False(File.Exists(outMd));
        // The test split keeps its first-N-by-id choice.
        (code, _, err) = CliRunner.Run("bench-quality", "--data", data, "--prompts", "2", "--prompts-only", "--out", outMd);
        Assert.True(code == 0, err);
        Assert.Equal(["unseen 0", "unseen 1"], File.ReadAllLines(list));
    }
}
