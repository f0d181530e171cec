using SelfCascade.Models.Unet;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Unet;

/// <summary>Live-tensor count across repeated forwards, and running/round-tripping in half precision.</summary>
public class UNetMemoryAndPrecisionTests
{
    public UNetMemoryAndPrecisionTests() => TorchSetup.Ensure();

    private static long LiveTensors => DisposeScopeManager.Statistics.ThreadTotalLiveCount;

    [Theory]
    [InlineData("unet_sd15_style")]
    [InlineData("unet_sdxl_style")]
    public void RepeatedForwardsKeepTheLiveTensorCountFlat(string model)
    {
        using var unet = UNetCase.Model(model);
        using var inputs = NewDisposeScope();
        using var _ = inference_mode();
        var c = UNetCase.Read(model, 1);
        var options = new UNetForwardOptions { SelfAttentionLogitScale = 1.1 };
        void Step()
        {
            using var scope = NewDisposeScope();
            unet.Forward(c.Sample, c.Timestep, c.Context, c.Added, options);
            var emb = unet.TimeEmbedding(c.Timestep, 2, ScalarType.Float32, c.Added);
            using var f = unet.ForwardEncoder(c.Sample, emb, c.Context);
        }
        Step();
        long before = LiveTensors;
        for (int i = 0; i < 3; i++) Step();
        Assert.Equal(before, LiveTensors);

        // Without any outer scope, a disposed output leaves nothing behind either.
        long before2 = LiveTensors;
        for (int i = 0; i < 2; i++) unet.Forward(c.Sample, c.Timestep, c.Context, c.Added).Dispose();
        Assert.Equal(before2, LiveTensors);
    }

    /// <summary>
    /// A half-precision UNet (fp32 weights streamed into it) against diffusers' own bf16 run of the same model on the
    /// CPU (<see cref="HalfPrecisionReference"/>), and back to fp32: then the weights are the rounded ones, and the
    /// output must match diffusers' fp32 run of its own round-tripped model (<c>.to(dtype).to(torch.float32)</c>) at
    /// the fp32 parity tolerance.
    /// </summary>
    [Theory]
    [InlineData(ScalarType.BFloat16, "bf16")]
    [InlineData(ScalarType.Float16, "fp16")]
    public void HalfPrecisionModelMatchesDiffusersAndRoundTrips(ScalarType dtype, string name)
    {
        const string model = "unet_sd2_style";
        using var io = Parity.Open("models", model, "io.safetensors");
        using var reference = HalfPrecisionReference.Open();
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var c = UNetCase.Read(model, 0);
        Parity.AssertClose(reference.Read("unet_c0_fp32"), io.Read("c0_out"), "reference fp32 output = fixture");

        using var unet = UNetCase.Model(model, dtype);
        Assert.All(unet.parameters(), p => Assert.Equal(dtype, p.dtype));
        Assert.Equal(dtype, unet.DType);
        var half = unet.Forward(c.Sample.to_type(dtype), c.Timestep, c.Context.to_type(dtype), c.Added);
        Assert.Equal(dtype, half.dtype);
        HalfPrecisionReference.AssertClose(half, reference, "unet_c0", dtype);

        unet.to(ScalarType.Float32);
        var back = unet.Forward(c.Sample, c.Timestep, c.Context);
        Assert.Equal(ScalarType.Float32, back.dtype);
        Parity.AssertClose(back, reference.Read("unet_c0_roundtrip_" + name), $"{dtype} -> fp32 output");
    }
}
