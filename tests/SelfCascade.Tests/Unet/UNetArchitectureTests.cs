using System.Diagnostics;
using SelfCascade.IO;
using SelfCascade.Models;
using SelfCascade.Models.Unet;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Unet;

/// <summary>
/// The full-size SD 1.5, SD 2.1-base and SDXL UNets, built from the arch fixtures' configs on the
/// meta device (no memory), must have exactly diffusers' state-dict names, shapes and parameter counts.
/// </summary>
public class UNetArchitectureTests
{
    public UNetArchitectureTests() => TorchSetup.Ensure();

    [Theory]
    [InlineData("unet_sd15.json")]
    [InlineData("unet_sd21_base.json")]
    [InlineData("unet_sdxl.json")]
    public void FullSizeUNetHasDiffusersStateDict(string file)
    {
        var arch = StateDictShapes.Load(file);
        var config = UNet2DConditionConfig.FromJson(ConfigJson.Parse(StateDictShapes.ConfigJson(arch), file));
        long rssBefore = Rss();
        using (ModelConstruction.On(META))
        using (var unet = new UNet2DConditionModel(config))
        {
            Assert.All(unet.parameters(), p => Assert.Equal(DeviceType.META, p.device_type));
            Assert.True(Rss() - rssBefore < 512L << 20, $"building {file} on meta grew the process by {(Rss() - rssBefore) >> 20} MB");
            StateDictShapes.AssertMatches(unet, arch, file);
        }
        Assert.Equal(DeviceType.CPU, get_default_device().type);
    }

    [Fact]
    public void MetaBuildAllocatesNothing()
    {
        // SDXL's UNet is 2.57e9 parameters (10 GB in fp32): on meta the process must not grow by anything close.
        var arch = StateDictShapes.Load("unet_sdxl.json");
        var config = UNet2DConditionConfig.FromJson(ConfigJson.Parse(StateDictShapes.ConfigJson(arch), "sdxl"));
        GC.Collect();
        long before = Rss();
        using (ModelConstruction.On(META))
        using (var unet = new UNet2DConditionModel(config))
        {
            long grown = Rss() - before;
            Assert.True(grown < 512L << 20, $"grew by {grown >> 20} MB");
            Assert.Equal(arch.Params, unet.parameters().Sum(p => p.numel()));
        }
    }

    private static long Rss()
    {
        using var p = Process.GetCurrentProcess();
        p.Refresh();
        return p.WorkingSet64;
    }
}
