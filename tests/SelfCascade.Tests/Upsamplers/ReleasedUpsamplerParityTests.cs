using System.CommandLine;
using System.Text.Json.Nodes;
using SelfCascade.Cascade.Upsamplers;
using SelfCascade.Cli;
using SelfCascade.Cli.Commands;
using SelfCascade.IO;
using SelfCascade.Models.Unet;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Upsamplers;

/// <summary>
/// The released upsampler's own code (Self-Cascade, branch stable-diffusion-xl: ResBlock / TimestepEmbedSequential)
/// ran on a tiny configuration with random weights (tests/reference/released-upsampler/make_released_upsampler.py);
/// its checkpoint is a real torch.save `.pth`. `convert-upsamplers` plus our forward must give its outputs.
/// </summary>
public sealed class ReleasedUpsamplerParityTests : IDisposable
{
    private static string Reference => Path.Combine(Fixtures.RepoRoot, "tests", "reference", "released-upsampler");
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-relup-").FullName;

    public ReleasedUpsamplerParityTests() => TorchSetup.Ensure();

    public void Dispose() => Directory.Delete(_dir, true);

    private string Convert(string model)
    {
        var outDir = Path.Combine(_dir, "converted-" + Path.GetFileName(model));
        var o = new StringWriter();
        var err = new StringWriter();
        var console = new CliConsole(o, err, false);
        var root = new RootCommand("test") { CliApp.LibTorchOption, ConvertUpsamplersCommand.Create(console) };
        int code = root.Parse(["convert-upsamplers", "--in", Path.Combine(Reference, "upsampler_only.pth"), "--model", model, "--out", outDir])
            .Invoke(new InvocationConfiguration { Output = o, Error = err, EnableDefaultExceptionHandler = false });
        Assert.True(code == 0, err.ToString());
        return outDir;
    }

    private static void AssertReleasedOutputs(FeatureUpsamplerSet set)
    {
        Assert.Equal(["down0", "down1", "down2", "mid"], set.Points.Select(p => p.ToString()));
        using var io = SafeTensorsFile.Open(Path.Combine(Reference, "io.safetensors"));
        using var scope = torch.NewDisposeScope();
        using var mode = inference_mode();
        var emb = io.Read("emb");
        var condition = set.TimeCondition(emb);
        for (int k = 0; k < set.Points.Count; k++)
        {
            var lr = io.Read($"lr{k}");
            var expected = io.Read($"out{k}");
            var ours = set.Upsample(set.Points[k], lr, condition, expected.shape[2], expected.shape[3]);
            Parity.AssertClose(ours, expected, $"feature_upsampler{k} ({set.Points[k]})");
        }
    }

    [Fact]
    public void ConvertedReleasedCheckpointReproducesTheReleasedModule()
    {
        var outDir = Convert(Reference);
        var unet = UNet2DConditionConfig.Load(Path.Combine(Reference, "unet", "config.json"));
        using var set = FeatureUpsamplerSet.Load(outDir, unet);
        AssertReleasedOutputs(set);
    }

    [Fact]
    public void ReleasedNormalisationIgnoresTheUNetsGroupCount()
    {
        // The released ResBlocks use GroupNorm32(32, C) whatever the UNet's norm_num_groups: the same checkpoint
        // converted for a UNet with 8 groups must still compute the released outputs.
        var model = Path.Combine(_dir, "groups8");
        Directory.CreateDirectory(Path.Combine(model, "unet"));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Reference, "unet", "config.json")))!;
        config["norm_num_groups"] = 8;
        File.WriteAllText(Path.Combine(model, "unet", "config.json"), config.ToJsonString());
        var outDir = Convert(model);
        using var set = FeatureUpsamplerSet.Load(outDir, UNet2DConditionConfig.Load(Path.Combine(model, "unet", "config.json")));
        AssertReleasedOutputs(set);
        Assert.Equal(32, set.Config.NormGroups);
    }
}
