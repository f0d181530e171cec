using SelfCascade.Models.Vae;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Vae;

/// <summary>models/vae_tiny: image → posterior mean and std, latent → raw decoder output.</summary>
public class AutoencoderKLParityTests
{
    public AutoencoderKLParityTests() => TorchSetup.Ensure();

    private static string Dir => Fixtures.ParityPath("models", "vae_tiny");

    [Fact]
    public void PosteriorAndDecodeMatchDiffusers()
    {
        using var vae = AutoencoderKL.FromPretrained(Dir);
        using var io = Parity.Open("models", "vae_tiny", "io.safetensors");
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var report = new ParityReport();
        using (var posterior = vae.Encode(io.Read("image")))
        {
            report.Close(posterior.Mean, io.Read("posterior_mean"), "posterior_mean");
            report.Close(posterior.Std, io.Read("posterior_std"), "posterior_std");
        }
        report.Close(vae.Decode(io.Read("latent")), io.Read("decoded"), "decoded");
        report.ThrowIfAny();
        Assert.Equal(0.18215, vae.ScalingFactor);
        Assert.Null(vae.ShiftFactor);
        Assert.Equal(2, vae.DownsampleFactor);
    }

    [Fact]
    public void SampleDrawsNoiseAsDiffusers()
    {
        using var vae = AutoencoderKL.FromPretrained(Dir);
        using var io = Parity.Open("models", "vae_tiny", "io.safetensors");
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        using var posterior = vae.Encode(io.Read("image"));
        using var g = new Generator(3);
        var sample = posterior.Sample(g);
        // diffusers: randn_tensor(mean.shape, generator) on the CPU generator, then mean + std * noise.
        using var g2 = new Generator(3);
        var noise = randn(posterior.Mean.shape, generator: g2);
        var expected = io.Read("posterior_mean") + io.Read("posterior_std") * noise;
        Parity.AssertClose(sample, expected, "posterior sample");
        Assert.True(posterior.Sample(null).shape.SequenceEqual(posterior.Mean.shape));
    }
}
