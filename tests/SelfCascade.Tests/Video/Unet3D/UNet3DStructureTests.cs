using System.Text.RegularExpressions;
using SelfCascade.IO;
using SelfCascade.Models;
using SelfCascade.Models.Unet;
using SelfCascade.Tests.Support;
using SelfCascade.Video.Unet3D;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Video.Unet3D;

/// <summary>
/// Beyond the fixtures: with every temporal layer zeroed (the last conv of each temporal convolution, `proj_out` of
/// each temporal transformer and of transformer_in, as diffusers initialises the convolutions) the UNet3D treats
/// frames independently, each frame's output is its own single-frame run, and equals the image UNet built from the
/// same spatial weights. Wrong configs and weight layouts give one error naming the problems.
/// </summary>
public partial class UNet3DStructureTests
{
    public UNet3DStructureTests() => TorchSetup.Ensure();

    [GeneratedRegex(@"(^|\.)(temp_convs\.\d+\.conv4\.3|temp_attentions\.\d+\.proj_out|transformer_in\.proj_out)\.(weight|bias)$")]
    private static partial Regex TemporalOutput();

    private static UNet3DConditionModel ZeroTemporalModel()
    {
        var unet = UNet3DConditionModel.FromPretrained(Unet3DFixtures.ModelScope("unet"));
        int zeroed = 0;
        using (no_grad())
            foreach (var (name, p) in unet.named_parameters())
                if (TemporalOutput().IsMatch(name)) { p.zero_(); zeroed++; }
        // 13 temporal output layers (weight + bias each) in this config: down blocks 2 + 1, mid block 2 + 1, up blocks
        // 2 + 4 (UpBlock3D's two convs, CrossAttnUpBlock3D's two convs and two transformers), transformer_in 1.
        Assert.Equal(2 * 13, zeroed);
        return unet;
    }

    private static (Tensor Sample, Tensor T, Tensor Ctx) Inputs()
    {
        var g = new Generator(7);
        var sample = randn([1, 4, 5, 12, 16], generator: g);
        var ctx = randn([1, 7, 32], generator: g);
        return (sample, tensor(new long[] { 500 }), ctx);
    }

    [Fact]
    public void FramesAreIndependentWhenTheTemporalLayersAreZero()
    {
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var (sample, t, ctx) = Inputs();
        var report = new ParityReport();
        using (var unet = ZeroTemporalModel())
        {
            var all = unet.Forward(sample, t, ctx);
            for (int f = 0; f < sample.shape[2]; f++)
            {
                var single = unet.Forward(sample[.., .., f..(f + 1)], t, ctx);
                report.Close(all[.., .., f..(f + 1)], single, $"frame {f} alone vs in the video");
            }
        }
        report.ThrowIfAny();

        // With the trained temporal layers the frames do interact (so the comparison above can fail).
        using var full = UNet3DConditionModel.FromPretrained(Unet3DFixtures.ModelScope("unet"));
        var video = full.Forward(sample, t, ctx);
        var first = full.Forward(sample[.., .., 0..1], t, ctx);
        Assert.True(Parity.MaxAbsDiff(video[.., .., 0..1], first) > 1e-2);
    }

    [Fact]
    public void WithZeroTemporalLayersEachFrameIsTheImageUnetsOutput()
    {
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var (sample, t, ctx) = Inputs();
        using var unet = ZeroTemporalModel();
        UNet2DConditionModel image;
        using (ModelConstruction.On(CPU, ScalarType.Float32)) image = new UNet2DConditionModel(UNet2DConditionConfig.FromJson(ConfigJson.Parse(Unet3DFixtures.SpatialImageConfigJson)));
        using (image)
        {
            var report = WeightLoader.Load(image, WeightLoader.ResolveWeightFiles(Unet3DFixtures.ModelScope("unet")), strict: false);
            Assert.Empty(report.Missing);
            Assert.Empty(report.Mismatched);
            Assert.All(report.Unexpected, k => Assert.Matches(@"(^|\.)(temp_convs|temp_attentions|transformer_in)\.", k));
            image.eval();
            long frames = sample.shape[2];
            var video = unet.Forward(sample, t, ctx);
            var perFrame = image.Forward(VideoLayout.ToFrames(sample), t, ctx.repeat_interleave(frames, 0));
            Parity.AssertClose(VideoLayout.ToFrames(video), perFrame, "UNet3D (zero temporal layers) vs image UNet per frame");
        }
    }

    [Fact]
    public void AnImageUnetFolderIsRejectedByItsClass()
    {
        var e = Assert.Throws<ConfigException>(() => UNet3DConditionModel.FromPretrained(Fixtures.ParityPath("models", "unet_sd15_style")));
        Assert.Contains("UNet2DConditionModel", e.Message);
        Assert.Contains("not a UNet3DConditionModel", e.Message);
    }

    [Fact]
    public void UnknownBlockTypesAndSettingsAreReportedTogether()
    {
        var json = File.ReadAllText(Unet3DFixtures.ModelScope("unet", "config.json"))
            .Replace("\"CrossAttnDownBlock3D\"", "\"CrossAttnDownBlockMotion\"")
            .Replace("\"time_cond_proj_dim\": null", "\"time_cond_proj_dim\": 16");
        var e = Assert.Throws<ConfigException>(() => UNet3DConditionConfig.FromJson(ConfigJson.Parse(json, "config.json")));
        Assert.Contains("2 problem(s)", e.Message);
        Assert.Contains("unsupported down block type 'CrossAttnDownBlockMotion'", e.Message);
        Assert.Contains("'time_cond_proj_dim' = 16", e.Message);
    }

    [Fact]
    public void WeightsOfAnotherLayoutFailWithOneErrorListingTheKeys()
    {
        // The UNet3D config beside the image UNet's weights: every temporal layer is missing, nothing is loaded.
        var dir = Directory.CreateTempSubdirectory("sc-unet3d-").FullName;
        try
        {
            File.Copy(Unet3DFixtures.ModelScope("unet", "config.json"), Path.Combine(dir, "config.json"));
            File.Copy(Fixtures.ParityPath("models", "unet_sd15_style", "diffusion_pytorch_model.safetensors"),
                Path.Combine(dir, "diffusion_pytorch_model.safetensors"));
            var e = Assert.Throws<WeightLoadException>(() => UNet3DConditionModel.FromPretrained(dir));
            Assert.Contains(e.Report.Missing, k => k.StartsWith("transformer_in.", StringComparison.Ordinal));
            Assert.Contains(e.Report.Missing, k => k.Contains(".temp_convs.0.conv1.2.weight", StringComparison.Ordinal));
            Assert.Contains(e.Report.Missing, k => k.Contains(".temp_attentions.0.proj_in.weight", StringComparison.Ordinal));
            Assert.NotEmpty(e.Report.Unexpected); // the image UNet's second resnet per down block
            Assert.Contains("missing: transformer_in.", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
