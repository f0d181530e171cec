using SelfCascade.Models.Vae;
using SelfCascade.Pipelines;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Pipelines;

/// <summary>The VAE dtype rule every pipeline loads with (diffusers: `force_upcast` and fp16 -> fp32 VAE).</summary>
public class ComponentLoaderTests
{
    [Theory]
    [InlineData(true, null, ScalarType.Float16, ScalarType.Float32)]    // SDXL-style VAE under fp16: upcast
    [InlineData(true, null, ScalarType.BFloat16, ScalarType.BFloat16)]  // bf16 has fp32's range: no upcast
    [InlineData(true, null, ScalarType.Float32, ScalarType.Float32)]
    [InlineData(false, null, ScalarType.Float16, ScalarType.Float16)]   // force_upcast false: the pipeline's dtype
    [InlineData(false, true, ScalarType.Float16, ScalarType.Float32)]   // the option wins both ways
    [InlineData(true, false, ScalarType.Float16, ScalarType.Float16)]
    public void TheVaeIsUpcastOnlyWhenItsConfigOrTheOptionSaysSo(bool forceUpcast, bool? upcastOption, ScalarType dtype, ScalarType expected)
    {
        var config = new AutoencoderKLConfig { BlockOutChannels = [32], ForceUpcast = forceUpcast };
        Assert.Equal(expected, ComponentLoader.VaeDType(config, new PipelineOptions { UpcastVae = upcastOption }, dtype));
    }
}
