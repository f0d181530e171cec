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

    [Theory]
    [InlineData(ScalarType.BFloat16, 0.08)]
    [InlineData(ScalarType.Float16, 0.02)]
    public void HalfPrecisionModelRunsAndRoundTrips(ScalarType dtype, double relTol)
    {
        const string model = "unet_sd2_style";
        using var io = Parity.Open("models", model, "io.safetensors");
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var c = UNetCase.Read(model, 0);
        var reference = io.Read("c0_out");

        // fp32 weights streamed into a half-precision model.
        using var unet = UNetCase.Model(model, dtype);
        Assert.All(unet.parameters(), p => Assert.Equal(dtype, p.dtype));
        Assert.Equal(dtype, unet.DType);
        var added = c.Added;
        var half = unet.Forward(c.Sample.to_type(dtype), c.Timestep, c.Context.to_type(dtype), added);
        Assert.Equal(dtype, half.dtype);
        Parity.AssertClose(half.to_type(ScalarType.Float32), reference, $"{dtype} model output", relTol);

        // And back to fp32: the weights are the fp32 ones rounded to half precision, so the output is close.
        unet.to(ScalarType.Float32);
        var back = unet.Forward(c.Sample, c.Timestep, c.Context);
        Parity.AssertClose(back, reference, $"{dtype} -> fp32 output", relTol);
    }
}
