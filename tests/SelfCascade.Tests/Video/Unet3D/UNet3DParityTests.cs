using SelfCascade.Tests.Support;
using SelfCascade.Video.Unet3D;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Video.Unet3D;

/// <summary>
/// modelscope_tiny/io_unet3d.safetensors: UNet3DConditionModel on c0 (1 x 8 frames x 16x16, t=981, with the hidden
/// state after transformer_in and leaving every down block, the mid block and every up block) and c1 (2 videos x 8
/// frames x 12x20, t=1: latents that are not a multiple of the upsampling factor, one text state per video).
/// </summary>
public class UNet3DParityTests
{
    public UNet3DParityTests() => TorchSetup.Ensure();

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void OutputAndEveryBlockMatchDiffusers(int c)
    {
        using var unet = UNet3DConditionModel.FromPretrained(Unet3DFixtures.ModelScope("unet"));
        using var io = Unet3DFixtures.Open("io_unet3d.safetensors");
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var sample = io.Read($"c{c}_sample");
        var t = io.Read($"c{c}_timestep");
        var ctx = io.Read($"c{c}_encoder_hidden_states");

        using var hook = new RecordingFeatureHook();
        var output = unet.Forward(sample, t, ctx, new SelfCascade.Models.Unet.UNetForwardOptions { FeatureHook = hook });

        var report = new ParityReport();
        var expected = io.Entries.Keys.Where(k => k.StartsWith($"c{c}_feat_", StringComparison.Ordinal)).Order().ToList();
        if (c == 0) Assert.Equal(2 * unet.Config.NumBlocks + 2, expected.Count); // + transformer_in
        foreach (var key in expected)
        {
            var name = key[$"c{c}_feat_".Length..];
            if (name == "transformer_in") { report.Close(unet.ForwardInput(sample), io.Read(key), $"c{c} transformer_in"); continue; }
            if (!hook.Features.TryGetValue(name, out var ours)) { report.Fail($"{name}: not reported by the hook"); continue; }
            report.Close(ours, io.Read(key), $"c{c} {name}");
        }
        report.Close(output, io.Read($"c{c}_out"), $"c{c} out");
        report.ThrowIfAny();
    }
}
