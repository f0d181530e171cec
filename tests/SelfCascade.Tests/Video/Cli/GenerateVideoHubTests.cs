using SelfCascade.Imaging;
using SelfCascade.Tests.Cli;
using SelfCascade.Tests.Hub;
using SelfCascade.Tests.Support;
using SelfCascade.Tests.Video.Unet3D;

namespace SelfCascade.Tests.Video.Cli;

/// <summary>`generate-video --model org/name` for a TextToVideoSD repository (served by the fake hub): the folder's frames.</summary>
[Collection(HubEnvironmentCollection.Name)]
public sealed class GenerateVideoHubTests : HubCliTestBase
{
    [Fact]
    public void AHubIdOfATextToVideoRepositoryGivesTheFoldersFrames()
    {
        var folder = Unet3DFixtures.BuildFolder(Directory.CreateDirectory(Path.Combine(_hub.Dir, "folder")).FullName);
        _hub.Server.Add("tiny-org/t2v-tiny", HubTestContext.Commit("t2v"), HubTestContext.FromFolder(folder));
        string[] Args(string model, string name) => ["generate-video", "--model", model, "--prompt", "a blue square", "--frames", "2",
            "--steps", "2", "--size", "32x32", "--out", Path.Combine(_hub.Dir, name + ".webp"), "--save-frames", Path.Combine(_hub.Dir, name)];
        var (c1, _, e1) = CliRunner.Run(Args("tiny-org/t2v-tiny", "hub"));
        Assert.True(c1 == 0, e1);
        Assert.Contains("hub: tiny-org/t2v-tiny", e1);
        var (c2, _, e2) = CliRunner.Run(Args(folder, "dir"));
        Assert.True(c2 == 0, e2);
        for (int f = 0; f < 2; f++)
        {
            var name = $"frame_{f:D3}.png";
            var hub = RgbImage.Load(Path.Combine(_hub.Dir, "hub", name));
            Assert.Equal(RgbImage.Load(Path.Combine(_hub.Dir, "dir", name)).Pixels, hub.Pixels);
            Assert.Equal("TextToVideoSD", RgbImage.ReadPngText(Path.Combine(_hub.Dir, "hub", name))["video_model"]);
        }
    }
}
