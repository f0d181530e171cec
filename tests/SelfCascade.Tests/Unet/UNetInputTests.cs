using SelfCascade.IO;
using SelfCascade.Models.Unet;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Unet;

/// <summary>Latent sizes, timestep forms, input errors and config validation.</summary>
public class UNetInputTests
{
    public UNetInputTests() => TorchSetup.Ensure();

    [Theory]
    [InlineData(13, 21)]  // odd: every downsampler rounds up, upsamplers resize to the skip sizes
    [InlineData(10, 14)]  // even but not a multiple of the overall factor 4
    [InlineData(1, 1)]
    [InlineData(8, 40)]
    public void AnyLatentSizeRunsAndKeepsItsShape(int h, int w)
    {
        using var unet = UNetCase.Model("unet_sd2_style");
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        using var g = new Generator(1);
        var x = randn([1, 4, h, w], generator: g);
        var ctx = randn([1, 7, 32], generator: g);
        var y = unet.Forward(x, tensor(500L), ctx);
        Assert.Equal(new long[] { 1, 4, h, w }, y.shape);
        Assert.False(y.isnan().any().item<bool>());
    }

    [Fact]
    public void ScalarAndBatchTimestepsAgree()
    {
        using var unet = UNetCase.Model("unet_sd15_style");
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var c = UNetCase.Read("unet_sd15_style", 2);  // timestep [500, 500]
        var batch = unet.Forward(c.Sample, c.Timestep, c.Context);
        Parity.AssertEqual(unet.Forward(c.Sample, tensor(500L), c.Context), batch, "scalar timestep");
        Parity.AssertEqual(unet.Forward(c.Sample, tensor(new[] { 500.0f }), c.Context), batch, "(1,) float timestep");
    }

    [Fact]
    public void BadInputsAreClearArgumentExceptions()
    {
        using var unet = UNetCase.Model("unet_sdxl_style");
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var c = UNetCase.Read("unet_sdxl_style", 0);
        var e = Assert.Throws<ArgumentException>(() => unet.Forward(c.Sample, c.Timestep, c.Context));
        Assert.Contains("text_time", e.Message);
        e = Assert.Throws<ArgumentException>(() => unet.Forward(zeros(2, 3, 8, 8), c.Timestep, c.Context, c.Added));
        Assert.Contains("(B, 4, H, W)", e.Message);
        e = Assert.Throws<ArgumentException>(() => unet.Forward(c.Sample, c.Timestep, zeros(2, 7, 32), c.Added));
        Assert.Contains("encoder_hidden_states", e.Message);
        e = Assert.Throws<ArgumentException>(() => unet.Forward(c.Sample, zeros(3), c.Context, c.Added));
        Assert.Contains("timestep", e.Message);
        e = Assert.Throws<ArgumentException>(() => unet.Forward(c.Sample, c.Timestep, c.Context, new UNetAddedConditions(zeros(2, 31), c.Added!.TimeIds)));
        Assert.Contains("projection_class_embeddings_input_dim", e.Message);
    }

    [Fact]
    public void ConfigReportsEveryProblemAtOnce()
    {
        const string json = """
        {
          "block_out_channels": [320, 650, 1280],
          "down_block_types": ["CrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D"],
          "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
          "attention_head_dim": [5, 10],
          "addition_embed_type": "image",
          "class_embed_type": "timestep",
          "some_future_key": 1
        }
        """;
        var e = Assert.Throws<ConfigException>(() => UNet2DConditionConfig.FromJson(ConfigJson.Parse(json, "bad.json")));
        foreach (var fragment in new[] { "'down_block_types' has 2 entries", "SimpleCrossAttnDownBlock2D", "650 is not divisible by norm_num_groups 32",
                     "'attention_head_dim' has 2 entries", "addition_embed_type 'image'", "class_embed_type" })
            Assert.Contains(fragment, e.Message);
        Assert.DoesNotContain("some_future_key", e.Message);

        var missing = Assert.Throws<ConfigException>(() => UNet2DConditionConfig.FromJson(ConfigJson.Parse("{\"addition_embed_type\": \"text_time\"}", "m.json")));
        foreach (var key in new[] { "down_block_types", "up_block_types", "block_out_channels", "addition_time_embed_dim", "projection_class_embeddings_input_dim" })
            Assert.Contains($"required key '{key}' is missing", missing.Message);
    }

    [Fact]
    public void LegacyAttentionHeadDimIsTheHeadCount()
    {
        var config = UNet2DConditionConfig.Load(Fixtures.ParityPath("models", "unet_sd2_style", "config.json"));
        Assert.Equal([2, 4, 4], config.NumAttentionHeads);
        var sd15 = UNet2DConditionConfig.Load(Fixtures.ParityPath("models", "unet_sd15_style", "config.json"));
        Assert.Equal([8, 8], sd15.NumAttentionHeads);
        var xl = UNet2DConditionConfig.Load(Fixtures.ParityPath("models", "unet_sdxl_style", "config.json"));
        Assert.Equal([1, 2], xl.TransformerLayersPerBlock);
        Assert.True(xl.HasTextTimeEmbedding);
    }
}

/// <summary>TorchSharp 0.107 leaves GroupNorm's affine parameters uninitialised; fresh networks must not inherit that.</summary>
public class FreshNetworkInitTests
{
    public FreshNetworkInitTests() => SelfCascade.Tests.Support.TorchSetup.Ensure();

    [Fact]
    public void FreshUnetHasIdentityGroupNormsAndFiniteOutput()
    {
        var config = SelfCascade.Models.Unet.UNet2DConditionConfig.Load(SelfCascade.Tests.Support.Fixtures.ParityPath("models", "unet_sd15_style", "config.json"));
        using var unet = new SelfCascade.Models.Unet.UNet2DConditionModel(config);
        foreach (var (name, p) in unet.named_parameters())
        {
            if (!name.Contains("norm")) continue;
            using var finite = TorchSharp.torch.isfinite(p).all();
            Assert.True(finite.item<bool>(), name);
        }
        using var w = unet.state_dict()["conv_norm_out.weight"].clone();
        using var ones = TorchSharp.torch.ones_like(w);
        Assert.True(SelfCascade.Tests.Support.Parity.Same(w, ones));
        using var x = TorchSharp.torch.randn(1, 4, 8, 8);
        using var t = TorchSharp.torch.tensor(10L);
        using var ctx = TorchSharp.torch.randn(1, 7, 32);
        using var y = unet.Forward(x, t, ctx);
        using var ok = TorchSharp.torch.isfinite(y).all();
        Assert.True(ok.item<bool>());
    }
}
