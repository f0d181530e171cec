using SelfCascade.IO;
using SelfCascade.Models;
using SelfCascade.Models.Vae;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Vae;

/// <summary>The full-size SD VAE built on the meta device has exactly diffusers' names, shapes and parameter count.</summary>
public class VaeArchitectureTests
{
    public VaeArchitectureTests() => TorchSetup.Ensure();

    [Fact]
    public void FullSizeVaeHasDiffusersStateDict()
    {
        var arch = StateDictShapes.Load("vae_sd.json");
        var config = AutoencoderKLConfig.FromJson(ConfigJson.Parse(StateDictShapes.ConfigJson(arch), "vae_sd.json"));
        using (ModelConstruction.On(META))
        using (var vae = new AutoencoderKL(config))
        {
            Assert.All(vae.parameters(), p => Assert.Equal(DeviceType.META, p.device_type));
            StateDictShapes.AssertMatches(vae, arch, "vae_sd.json");
        }
    }
}
