using System.Diagnostics;
using SelfCascade.Models.Clip;
using SelfCascade.Tests.Support;
using TorchSharp;

namespace SelfCascade.Tests.Clip;

/// <summary>
/// arch/text_*.json: the full-size CLIP text encoders of SD 1.5, SD 2.x and SDXL (text_encoder_2), built on the
/// meta device (no tensor memory), must have exactly transformers' state-dict names, shapes and parameter count.
/// </summary>
public class ClipTextArchTests
{
    public ClipTextArchTests() => TorchSetup.Ensure();

    [Theory]
    [InlineData("text_clip_vit_l14.json")]
    [InlineData("text_openclip_vit_h14_sd2.json")]
    [InlineData("text_openclip_vit_bigg14_sdxl.json")]
    public void FullSizeModelHasTransformersStateDict(string file)
    {
        var arch = ArchFixture.Load(file);
        var config = ClipTextConfig.From(arch.Config, withProjection: arch.ClassName == ClipTextConfig.WithProjectionClass);
        arch.Config.ThrowIfInvalid();

        long rssBefore = ResidentBytes();
        using var model = new ClipTextModel(config, device: torch.META);
        long grown = ResidentBytes() - rssBefore;

        Assert.Empty(ArchFixture.NotOnMeta(model));
        // Real fp32 weights would be 0.5 to 2.8 GB; on meta nothing but module objects is allocated.
        Assert.True(grown < 32L << 20, $"building on meta grew the resident set by {grown >> 20} MiB");
        arch.AssertMatches(model);
        Assert.Equal(arch.ParameterCount, model.ParameterCount());
    }

    [Fact]
    public void ComparisonListsEveryProblem()
    {
        var arch = ArchFixture.Load("text_clip_vit_l14.json");
        // Wrong on purpose: one layer fewer, another MLP width, and the with-projection layout.
        var config = ClipTextConfig.From(arch.Config, withProjection: true) with { NumHiddenLayers = 11, IntermediateSize = 3000 };
        using var model = new ClipTextModel(config, device: torch.META);
        var problems = arch.Compare(model);
        // Every reference key is missing (they have no text_model. prefix), every one of ours is unexpected.
        Assert.Equal(196, problems.Count(p => p.StartsWith("missing: ")));
        Assert.Contains("missing: encoder.layers.11.mlp.fc1.weight [3072,768]", problems);
        Assert.Contains("unexpected: text_projection.weight [768,768]", problems);
        Assert.Contains(problems, p => p.StartsWith("parameter count: "));

        var flat = ClipTextConfig.From(arch.Config, withProjection: false) with { IntermediateSize = 3000 };
        using var flatModel = new ClipTextModel(flat, device: torch.META);
        var shapeProblems = arch.Compare(flatModel);
        Assert.Equal(12 * 3, shapeProblems.Count(p => p.StartsWith("wrong shape: "))); // fc1.weight, fc1.bias, fc2.weight per layer
        Assert.Contains("wrong shape: encoder.layers.0.mlp.fc1.weight: ours [3000,768], reference [3072,768]", shapeProblems);
    }

    private static long ResidentBytes()
    {
        // VmRSS from /proc (Linux); the managed working set elsewhere.
        const string status = "/proc/self/status";
        if (File.Exists(status))
            foreach (var line in File.ReadLines(status))
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        using var p = Process.GetCurrentProcess();
        return p.WorkingSet64;
    }
}
