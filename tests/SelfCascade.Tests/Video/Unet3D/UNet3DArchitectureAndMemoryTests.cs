using System.Text.Json;
using SelfCascade.IO;
using SelfCascade.Models;
using SelfCascade.Tests.Support;
using SelfCascade.Video.Pipelines;
using SelfCascade.Video.Unet3D;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Video.Unet3D;

/// <summary>
/// The full-size UNet3DConditionModel (diffusers' defaults, the text-to-video-ms-1.7b shape; tests/reference/unet3d,
/// made by make_unet3d.py there) built on the meta device has exactly diffusers' names, shapes and parameter count;
/// repeated forwards and denoising steps leave no tensor behind.
/// </summary>
public sealed class UNet3DArchitectureAndMemoryTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-unet3d-mem-").FullName;
    public UNet3DArchitectureAndMemoryTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    private static long Live => DisposeScopeManager.Statistics.ThreadTotalLiveCount;

    [Fact]
    public void FullSizeUNet3DHasDiffusersStateDict()
    {
        var path = Path.Combine(Fixtures.RepoRoot, "tests", "reference", "unet3d", "unet3d_default_arch.json");
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = doc.RootElement;
        var shapes = new SortedDictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var p in root.GetProperty("state_dict").EnumerateObject())
            shapes[p.Name] = p.Value.EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var arch = new StateDictShapes.ArchFixture(root.GetProperty("config").Clone(), root.GetProperty("params").GetInt64(), shapes);
        var config = UNet3DConditionConfig.FromJson(ConfigJson.Parse(StateDictShapes.ConfigJson(arch), path));
        using (ModelConstruction.On(META))
        using (var unet = new UNet3DConditionModel(config))
        {
            Assert.All(unet.parameters(), p => Assert.Equal(DeviceType.META, p.device_type));
            StateDictShapes.AssertMatches(unet, arch, "UNet3DConditionModel (diffusers defaults)");
        }
        Assert.Equal(DeviceType.CPU, get_default_device().type);
    }

    [Fact]
    public void RepeatedForwardsAndStepsKeepTheLiveTensorCountFlat()
    {
        using var pipe = TextToVideoSdPipeline.FromPretrained(Unet3DFixtures.BuildFolder(_dir));
        using var inputs = NewDisposeScope();
        using var emb = pipe.EncodePrompt("a square", "", true);
        using var g = new Generator(1);
        var noise = pipe.InitialNoise(g, 1, 3, 16, 24);
        var t = tensor(new long[] { 500 });
        var ctx = emb.Positive;
        pipe.Scheduler.SetTimesteps(5);
        using (inference_mode())
        {
            pipe.Unet.Forward(noise, t, ctx).Dispose();
            LiveTensors.Settle();
            long before = Live;
            for (int i = 0; i < 2; i++) pipe.Unet.Forward(noise, t, ctx).Dispose();
            Assert.Equal(before, Live);
        }
        pipe.Denoise(noise, [pipe.Scheduler.Timesteps[0]], emb, 6.0).Dispose();
        LiveTensors.Settle();
        long beforeSteps = Live;
        for (int i = 0; i < 2; i++) pipe.Denoise(noise, pipe.Scheduler.Timesteps.Take(2).ToList(), emb, 6.0, videosPerCall: 1).Dispose(); // the input is not consumed
        Assert.Equal(beforeSteps, Live);
    }
}
