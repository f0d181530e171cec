using SelfCascade.Tests.Cli;
using SelfCascade.Tests.Support;
using SelfCascade.Training;

namespace SelfCascade.Tests.Training;

/// <summary>train-upsamplers --exclude-captions: the designs a benchmark evaluates on are left out of training.</summary>
public sealed class UpsamplerCaptionExclusionTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-upx-").FullName;
    public UpsamplerCaptionExclusionTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void ListedCaptionsAreLeftOutAndCounted()
    {
        var data = Path.Combine(_dir, "data");
        int made = SyntheticImages.Make(data, 32, variants: 2, withBadFiles: false);
        var list = Path.Combine(_dir, "exclude.txt");
        // Captions as `selfcascade data` writes them ("a red circle\n" in the .txt); blank lines and padding ignored.
        File.WriteAllText(list, "a red circle\n\n  a blue square  \r\nnot in the data\n");
        var excluded = ImageFolderDataset.ReadCaptionList(list);
        Assert.Equal(["a blue square", "a red circle", "not in the data"], excluded.Order(StringComparer.Ordinal));

        var all = new ImageFolderDataset(data, 32);
        var kept = new ImageFolderDataset(data, 32, excludeCaptions: excluded);
        Assert.Equal(made, all.Count);
        Assert.Empty(all.Excluded);
        Assert.Equal(made - 4, kept.Count); // two variants of each listed caption
        Assert.Equal(4, kept.Excluded.Count);
        for (int i = 0; i < kept.Count; i++) Assert.DoesNotContain(kept.CaptionAt(i), excluded);
        Assert.All(kept.Excluded, f => Assert.Contains(Path.GetFileName(f), new[] { "red-circle-0.png", "red-circle-1.png", "blue-square-0.png", "blue-square-1.png" }));
        Assert.Throws<FileNotFoundException>(() => ImageFolderDataset.ReadCaptionList(Path.Combine(_dir, "missing.txt")));
    }

    [Fact]
    public void TrainUpsamplersSaysHowManyWereExcluded()
    {
        var model = TinyModelFolders.BuildSd(Path.Combine(_dir, "model"));
        var data = Path.Combine(_dir, "data");
        int made = SyntheticImages.Make(data, 64, variants: 1, withBadFiles: false);
        var list = Path.Combine(_dir, "quality.prompts.txt");
        File.WriteAllLines(list, ["a green triangle", "a yellow circle"]);
        var (code, _, err) = CliRunner.Run("train-upsamplers", "--model", model, "--data", data, "--out", Path.Combine(_dir, "run"),
            "--exclude-captions", list, "--steps", "1", "--batch", "1");
        Assert.True(code == 0, err);
        Assert.Contains($"data: {made - 2} images", err);
        Assert.Contains("excluded: 2 file(s) whose caption is one of the 2 listed", err);

        (code, _, err) = CliRunner.Run("train-upsamplers", "--model", model, "--data", data, "--out", Path.Combine(_dir, "run2"),
            "--exclude-captions", Path.Combine(_dir, "nope.txt"), "--steps", "1");
        Assert.Equal(1, code);
        Assert.Contains("nope.txt", err);
    }
}
