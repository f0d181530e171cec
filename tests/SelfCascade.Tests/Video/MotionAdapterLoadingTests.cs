using SelfCascade.IO;
using SelfCascade.Models.Unet;
using SelfCascade.Tests.Support;
using SelfCascade.Video.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Video;

/// <summary>MotionAdapter folders: diffusers' names with and without the position tables; every other layout is one clear error.</summary>
public sealed class MotionAdapterLoadingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-madapter-").FullName;
    public MotionAdapterLoadingTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    private static string WeightsOf(string dir) => Path.Combine(dir, "diffusion_pytorch_model.safetensors");

    /// <summary>A copy of the fixture adapter with its tensors renamed/dropped by <paramref name="rename"/> (null = drop).</summary>
    private string Rewritten(string name, Func<string, string?> rename, string? configJson = null)
    {
        var dir = Path.Combine(_dir, name);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), configJson ?? File.ReadAllText(Path.Combine(VideoFixtures.AdapterDir, "config.json")));
        using var src = SafeTensorsFile.Open(WeightsOf(VideoFixtures.AdapterDir));
        var tensors = new Dictionary<string, Tensor>();
        try
        {
            foreach (var key in src.Entries.Keys)
                if (rename(key) is string k) tensors[k] = src.Read(key);
            SafeTensorsWriter.Save(WeightsOf(dir), tensors);
        }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
        return dir;
    }

    [Fact]
    public void FixtureAdapterLoadsEveryKey()
    {
        using var adapter = MotionAdapter.FromPretrained(VideoFixtures.AdapterDir);
        Assert.Equal(32, adapter.MaxFrames);
        Assert.Equal(2, adapter.NumBlocks);
        Assert.NotNull(adapter.Mid);
        Assert.Equal(2, adapter.Down(0).Count);
        Assert.Equal(3, adapter.Up(0).Count);
        var report = WeightLoader.Check(adapter, [WeightsOf(VideoFixtures.AdapterDir)]);
        Assert.True(report.Ok, report.Describe());
        // Loaded, not left at construction values: a weight equals the file's.
        using var f = SafeTensorsFile.Open(WeightsOf(VideoFixtures.AdapterDir));
        using var expected = f.Read("up_blocks.1.motion_modules.2.proj_out.weight");
        Assert.True(Parity.Same(adapter.state_dict()["up_blocks.1.motion_modules.2.proj_out.weight"], expected));
    }

    [Fact]
    public void WithoutPositionTablesTheComputedTablesAreDiffusers()
    {
        var dir = Rewritten("no-pe", k => k.EndsWith(".pos_embed.pe") ? null : k);
        using var adapter = MotionAdapter.FromPretrained(dir);
        using var f = SafeTensorsFile.Open(WeightsOf(VideoFixtures.AdapterDir));
        var state = adapter.state_dict();
        int n = 0;
        foreach (var key in f.Entries.Keys.Where(k => k.EndsWith(".pos_embed.pe")))
        {
            using var stored = f.Read(key);
            Parity.AssertClose(state[key], stored, key, 1e-6);
            n++;
        }
        Assert.Equal(2 * 2 + 1 + 2 * 3, n);
    }

    [Fact]
    public void OriginalAnimateDiffNamesAreOneClearError()
    {
        // mm_sd_v15 checkpoints: down_blocks.0.motion_modules.0.temporal_transformer.proj_in.weight, attention_blocks, ...
        var dir = Rewritten("original", k => k.Replace("motion_modules.0.", "motion_modules.0.temporal_transformer.")
            .Replace("transformer_blocks.0.attn1", "transformer_blocks.0.attention_blocks.0"));
        var e = Assert.Throws<MotionAdapterLayoutException>(() => MotionAdapter.FromPretrained(dir));
        Assert.Contains("not a diffusers MotionAdapter", e.Message);
        Assert.Contains("original AnimateDiff checkpoint layout", e.Message);
        Assert.Contains("missing: down_blocks.0.motion_modules.0.norm.weight", e.Message);
        Assert.Contains("unexpected: ", e.Message);
    }

    [Fact]
    public void MissingModulesAndWrongShapesAreListed()
    {
        var config = File.ReadAllText(Path.Combine(VideoFixtures.AdapterDir, "config.json")).Replace("\"motion_layers_per_block\": 2", "\"motion_layers_per_block\": 3");
        var dir = Rewritten("three-layers", k => k, config);
        var e = Assert.Throws<MotionAdapterLayoutException>(() => MotionAdapter.FromPretrained(dir));
        Assert.Contains("missing: down_blocks.0.motion_modules.2.", e.Message);

        var heads = File.ReadAllText(Path.Combine(VideoFixtures.AdapterDir, "config.json")).Replace("\"block_out_channels\": [\n    32,\n    64\n  ]", "\"block_out_channels\": [32, 128]");
        Assert.Contains("[32, 128]", heads);
        dir = Rewritten("wider", k => k, heads);
        e = Assert.Throws<MotionAdapterLayoutException>(() => MotionAdapter.FromPretrained(dir));
        Assert.Contains("wrong shape: down_blocks.1.", e.Message);
    }

    [Fact]
    public void UnsupportedConfigsAndFoldersAreClearErrors()
    {
        var config = File.ReadAllText(Path.Combine(VideoFixtures.AdapterDir, "config.json")).Replace("\"conv_in_channels\": null", "\"conv_in_channels\": 9");
        var e = Assert.Throws<MotionAdapterLayoutException>(() => MotionAdapter.FromPretrained(Rewritten("pia", k => k, config)));
        Assert.Contains("conv_in_channels", e.Message);

        var noConfig = Path.Combine(_dir, "no-config");
        Directory.CreateDirectory(noConfig);
        File.Copy(WeightsOf(VideoFixtures.AdapterDir), WeightsOf(noConfig));
        e = Assert.Throws<MotionAdapterLayoutException>(() => MotionAdapter.FromPretrained(noConfig));
        Assert.Contains("no config.json", e.Message);

        var unet = UNet2DConditionConfig.Load(Path.Combine(VideoFixtures.UnetDir, "config.json"));
        var other = MotionAdapterConfig.Load(Path.Combine(VideoFixtures.AdapterDir, "config.json"));
        var wide = new MotionAdapterConfig { BlockOutChannels = [32, 64, 64], MotionNumAttentionHeads = 4 };
        e = Assert.Throws<MotionAdapterLayoutException>(() => UNetMotionModel.CheckFits(unet, wide));
        Assert.Contains("block_out_channels [32,64,64] vs the UNet's [32,64]", e.Message);
        UNetMotionModel.CheckFits(unet, other);
    }
}
