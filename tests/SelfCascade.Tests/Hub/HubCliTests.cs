using SelfCascade.Imaging;
using SelfCascade.Tests.Cli;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Hub;

/// <summary>`--model org/name` through the CLI: the same image as the folder it was served from, offline reuse.</summary>
[Collection(HubEnvironmentCollection.Name)]
public sealed class HubCliTests : HubCliTestBase
{
    [Fact]
    public void Generate_from_a_hub_id_gives_the_same_image_as_from_the_folder()
    {
        var folder = TinyModelFolders.BuildSd(Path.Combine(_hub.Dir, "folder"));
        var commit = HubTestContext.Commit("cli");
        _hub.Server.Add("tiny-org/sd-tiny", commit, HubTestContext.FromFolder(folder));
        string[] Args(string model, string png) => ["generate", "--model", model, "--prompt", "a photo of a red circle", "--seed", "0",
            "--steps", "4", "--size", "32x32", "--out", Path.Combine(_hub.Dir, png)];

        var (c1, _, e1) = CliRunner.Run(Args("tiny-org/sd-tiny", "hub.png"));
        Assert.True(c1 == 0, e1);
        Assert.Contains("hub: tiny-org/sd-tiny", e1);
        var (c2, _, e2) = CliRunner.Run(Args(folder, "folder.png"));
        Assert.True(c2 == 0, e2);
        var hub = RgbImage.Load(Path.Combine(_hub.Dir, "hub.png"));
        var dir = RgbImage.Load(Path.Combine(_hub.Dir, "folder.png"));
        Assert.Equal(dir.Pixels, hub.Pixels);
        Assert.Equal("sd-tiny", RgbImage.ReadPngText(Path.Combine(_hub.Dir, "hub.png"))["model"]);

        // Offline (the flag, then the variable): the cache serves it with no request; a repository never fetched is one error line.
        int before = _hub.Server.Requests.Count;
        var (c3, _, e3) = CliRunner.Run([.. Args("tiny-org/sd-tiny", "offline.png"), "--offline"]);
        Assert.True(c3 == 0, e3);
        Assert.Equal(dir.Pixels, RgbImage.Load(Path.Combine(_hub.Dir, "offline.png")).Pixels);
        Set("HF_HUB_OFFLINE", "1");
        var (c4, _, e4) = CliRunner.Run([.. Args("tiny-org/other", "none.png")]);
        Assert.Equal(1, c4);
        Assert.StartsWith("error: tiny-org/other: offline", e4);
        Assert.Single(e4.Trim().Split('\n'));
        Assert.Equal(before, _hub.Server.Requests.Count);
        Assert.False(File.Exists(Path.Combine(_hub.Dir, "none.png")));

        // plan reads configs only: it resolves the id from the cache too.
        var (c5, o5, e5) = CliRunner.Run("plan", "--model", "tiny-org/sd-tiny", "--size", "64x64");
        Assert.True(c5 == 0, e5);
        Assert.Contains("64", o5);
        var (c6, o6, e6) = CliRunner.Run("inspect", "--model", "tiny-org/sd-tiny");
        Assert.True(c6 == 0, e6);
        Assert.Contains(Path.Combine("snapshots", commit), o6);
    }
}
