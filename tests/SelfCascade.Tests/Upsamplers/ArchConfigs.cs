using SelfCascade.IO;
using SelfCascade.Models.Unet;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Upsamplers;

internal static class ArchConfigs
{
    /// <summary>A full-size UNet config from fixtures/diffusers-parity/arch (no network built).</summary>
    public static UNet2DConditionConfig Unet(string file)
    {
        var arch = StateDictShapes.Load(file);
        return UNet2DConditionConfig.FromJson(ConfigJson.Parse(StateDictShapes.ConfigJson(arch), file));
    }
}
