using SelfCascade.IO;
using SelfCascade.Models.Unet;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Unet;

/// <summary>
/// models/unet_*_style fixtures: for each case (16x16 t=981, 12x20 t=1, 24x24 t=500, batch 2) the output and the
/// hidden state leaving every down block, the mid block and every up block, read through the feature hook.
/// </summary>
public class UNetParityTests
{
    public UNetParityTests() => TorchSetup.Ensure();

    public static TheoryData<string, int> Cases()
    {
        var d = new TheoryData<string, int>();
        foreach (var m in new[] { "unet_sd15_style", "unet_sd2_style", "unet_sdxl_style" })
            for (int c = 0; c < 3; c++) d.Add(m, c);
        return d;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void OutputAndEveryBlockMatchDiffusers(string model, int c)
    {
        using var unet = UNet2DConditionModel.FromPretrained(Fixtures.ParityPath("models", model));
        using var io = Parity.Open("models", model, "io.safetensors");
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var sample = io.Read($"c{c}_sample");
        var t = io.Read($"c{c}_timestep");
        var ctx = io.Read($"c{c}_encoder_hidden_states");
        UNetAddedConditions? added = io.Entries.ContainsKey($"c{c}_text_embeds")
            ? new UNetAddedConditions(io.Read($"c{c}_text_embeds"), io.Read($"c{c}_time_ids"))
            : null;
        Assert.Equal(unet.Config.HasTextTimeEmbedding, added is not null);

        using var hook = new RecordingFeatureHook();
        var output = unet.Forward(sample, t, ctx, added, new UNetForwardOptions { FeatureHook = hook });

        var report = new ParityReport();
        var expected = io.Entries.Keys.Where(k => k.StartsWith($"c{c}_feat_", StringComparison.Ordinal)).Order().ToList();
        Assert.Equal(2 * unet.Config.NumBlocks + 1, expected.Count);
        foreach (var key in expected)
        {
            var name = key[$"c{c}_feat_".Length..];
            if (!hook.Features.TryGetValue(name, out var ours)) { report.Fail($"{name}: not reported by the hook"); continue; }
            report.Close(ours, io.Read(key), $"{model} c{c} {name}");
        }
        report.Close(output, io.Read($"c{c}_out"), $"{model} c{c} out");
        report.ThrowIfAny();
    }
}
