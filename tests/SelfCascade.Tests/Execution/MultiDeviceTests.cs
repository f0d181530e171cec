using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Cli;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Execution;

/// <summary>
/// --devices on the CPU: two "devices" (two CPU pipelines working at once) give the same images in the same order
/// as one, and image i is the single-device image of seed + i. This checks the split, the threading and the order;
/// it cannot check two real GPUs.
/// </summary>
public sealed class MultiDeviceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-multi-").FullName;
    private readonly string _model;
    public MultiDeviceTests()
    {
        TorchSetup.Ensure();
        _model = TinyModelFolders.BuildSd(Path.Combine(_dir, "model"));
    }
    public void Dispose() => Directory.Delete(_dir, true);

    [Theory]
    [InlineData(5, 2, new[] { 0, 3, 3, 2 })]
    [InlineData(2, 3, new[] { 0, 1, 1, 1, 2, 0 })]
    [InlineData(4, 1, new[] { 0, 4 })]
    public void SplitIsContiguousAndInOrder(int images, int devices, int[] flat)
    {
        var chunks = MultiDeviceGeneration.Split(images, devices);
        Assert.Equal(flat, chunks.SelectMany(c => new[] { c.Start, c.Count }).ToArray());
    }

    private string[] Generate(string name, params string[] extra)
    {
        var outPath = Path.Combine(_dir, name + ".png");
        var args = new List<string> { "generate", "--model", _model, "--prompt", "a red circle", "--steps", "2", "--size", "32x32",
            "--scheduler", "euler-a", "--out", outPath };
        args.AddRange(extra);
        var (code, stdout, err) = CliRunner.Run(args.ToArray());
        Assert.True(code == 0, err);
        return stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    [Fact]
    public void TwoDevicesGiveTheSameImagesInTheSameOrderAsOne()
    {
        var two = Generate("two", "--devices", "cpu,cpu", "--num-images", "3", "--seed", "7");
        var one = Generate("one", "--devices", "cpu", "--num-images", "3", "--seed", "7");
        Assert.Equal(3, two.Length);
        for (int i = 0; i < 3; i++) Assert.Equal(RgbImage.Load(one[i]).Pixels, RgbImage.Load(two[i]).Pixels);
        Assert.NotEqual(RgbImage.Load(two[0]).Pixels, RgbImage.Load(two[1]).Pixels); // different seeds, different images
        // Image i is exactly the plain single-device image of seed + i (euler-a: per-step noise included).
        var single = Generate("single", "--seed", "8");
        Assert.Equal(RgbImage.Load(single[0]).Pixels, RgbImage.Load(two[1]).Pixels);
    }
}
