using SelfCascade.Checkpoints.SingleFile;
using SelfCascade.IO;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Checkpoints;

/// <summary>
/// The full-size original layouts (diffusers' conversion scripts applied to the arch fixtures' names and shapes,
/// tests/reference/single-file/fullsize_*.json) are detected as their family and map, with the built-in configs,
/// onto exactly the networks' names and shapes: nothing missing, unexpected or mis-shaped.
/// </summary>
public sealed class FullSizeKeyMapTests
{
    public FullSizeKeyMapTests() => TorchSetup.Ensure();

    /// <summary>Names and shapes only; reading data is not needed to check a map.</summary>
    internal sealed class HeaderOnlySource(Dictionary<string, long[]> shapes, string dtype = "F16", string path = "header-only.safetensors") : ITensorSource
    {
        public string Path => path;
        public IReadOnlyDictionary<string, SafeTensorEntry> Entries { get; } =
            shapes.ToDictionary(kv => kv.Key, kv => new SafeTensorEntry(kv.Key, dtype, kv.Value, 0, kv.Value.Aggregate(2L, (a, b) => a * b)), StringComparer.Ordinal);
        public Tensor Read(string name, ScalarType? dtype = null) => throw new NotSupportedException("header only");
        public void ReadInto(string name, Tensor destination) => throw new NotSupportedException("header only");
        public void Dispose() { }
    }

    [Theory]
    [InlineData("sd15", ModelFamily.StableDiffusion1, "sd15", "epsilon")]
    [InlineData("sd21", ModelFamily.StableDiffusion2, "sd21-v", "v_prediction")]
    [InlineData("sdxl", ModelFamily.StableDiffusionXL, "sdxl-base", "epsilon")]
    public void FullSizeLayoutMapsOntoTheBuiltInNetworks(string name, ModelFamily family, string config, string prediction)
    {
        using var ck = SingleFileCheckpoint.FromSource(new HeaderOnlySource(SingleFileReference.FullSize(name)));
        Assert.Equal(family, ck.Family);
        Assert.Equal("built-in " + config, ck.ConfigSource);
        Assert.Equal(prediction, ck.PredictionType);
        var problems = new List<string>();
        foreach (var component in ComponentKeyMaps.Networks(ck.Layout))
        {
            var (map, network) = ComponentKeyMaps.Build(component, ck.Config(component), ck.Layout);
            using (network)
            {
                var report = WeightLoader.Check(network, [map.Bind(ck.File)]);
                if (!report.Ok) problems.Add(component + ": " + report.Describe());
            }
        }
        Assert.Empty(ck.OtherKeys());
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Fact]
    public void Sd2BaseIsChosenWithEpsilon()
    {
        using var ck = SingleFileCheckpoint.FromSource(new HeaderOnlySource(SingleFileReference.FullSize("sd21")), new SingleFileOptions { PredictionType = "epsilon" });
        Assert.Equal("built-in sd21-base", ck.ConfigSource);
        var unet = ck.Config("unet");
        Assert.Equal(64, unet.Int("sample_size"));
        Assert.Equal("epsilon", ck.Config("scheduler").OptionalString("prediction_type"));
    }

    [Fact]
    public void FileOfNeitherLayoutIsOneErrorListingWhatItHolds()
    {
        var shapes = new Dictionary<string, long[]> { ["encoder.layers.0.weight"] = [4, 4], ["encoder.layers.1.weight"] = [4, 4], ["lm_head.weight"] = [2, 4] };
        var e = Assert.Throws<CheckpointLayoutException>(() => SingleFileCheckpoint.FromSource(new HeaderOnlySource(shapes)));
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains("encoder (2)", e.Message);
        Assert.Contains("lm_head (1)", e.Message);
    }

    [Fact]
    public void BuiltInConfigsBuildTheArchFixtureNetworks()
    {
        // The built-in configs are the arch fixtures' configs: the networks they build have exactly those names and shapes.
        var cases = new (string Id, string Component, string Arch)[]
        {
            ("sd15", "unet", "unet_sd15"), ("sd21-base", "unet", "unet_sd21_base"), ("sd21-v", "unet", "unet_sd21_base"),
            ("sdxl-base", "unet", "unet_sdxl"), ("sd15", "vae", "vae_sd"), ("sdxl-base", "vae", "vae_sd"),
            ("sd15", "text_encoder", "text_clip_vit_l14"), ("sd21-base", "text_encoder", "text_openclip_vit_h14_sd2"),
            ("sdxl-base", "text_encoder", "text_clip_vit_l14"), ("sdxl-base", "text_encoder_2", "text_openclip_vit_bigg14_sdxl"),
        };
        var problems = new List<string>();
        foreach (var (id, component, arch) in cases)
        {
            var layout = ComponentKeyMaps.LayoutOf(id.StartsWith("sd21") ? ModelFamily.StableDiffusion2 : id.StartsWith("sdxl") ? ModelFamily.StableDiffusionXL : ModelFamily.StableDiffusion1);
            var (_, network) = ComponentKeyMaps.Build(component, BuiltInConfigs.Get(id).Config(component), layout);
            using (network)
            {
                var expected = ArchFixture.Load(arch + ".json").StateDict;
                var have = network.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
                foreach (var (k, s) in expected) if (!have.TryGetValue(k, out var h) || !h.SequenceEqual(s)) problems.Add($"{id} {component}: {k}");
                foreach (var k in have.Keys.Except(expected.Keys).Where(k => !k.EndsWith("position_ids"))) problems.Add($"{id} {component}: unexpected {k}");
            }
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems.Take(30)));
    }
}
