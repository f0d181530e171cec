using SelfCascade.Cascade.Upsamplers;
using SelfCascade.Models.Unet;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SelfCascade.Tests.Upsamplers;

/// <summary>Parameter counts, state-dict names, the hook inside a UNet forward, and the training forward.</summary>
public sealed class UpsamplerModuleTests
{
    public UpsamplerModuleTests() => TorchSetup.Ensure();

    private static UNet2DConditionModel TinyUnet() => UNet2DConditionModel.FromPretrained(Fixtures.ParityPath("models", "unet_sd2_style"));

    // Full: per point 2 x (18C² + temb·C + 7C) + C (gate). Lite: 20·C per point + (temb·4 + 4) shared.
    // SD 1.5, SD 2.1-base and SDXL all have 320/640/1280/1280 channels at the released points and temb = 1280.
    [Theory]
    [InlineData("unet_sd15.json", UpsamplerVariant.Full, 145_460_800L)]
    [InlineData("unet_sd21_base.json", UpsamplerVariant.Full, 145_460_800L)]
    [InlineData("unet_sdxl.json", UpsamplerVariant.Full, 145_460_800L)]
    [InlineData("unet_sd15.json", UpsamplerVariant.Lite, 75_524L)]
    [InlineData("unet_sd21_base.json", UpsamplerVariant.Lite, 75_524L)]
    [InlineData("unet_sdxl.json", UpsamplerVariant.Lite, 75_524L)]
    public void ParameterCounts(string arch, UpsamplerVariant variant, long expected)
    {
        var config = ArchConfigs.Unet(arch);
        using var set = FeatureUpsamplerSet.Create(variant, config, device: META);
        Assert.Equal(["down0", "down1", "down2", "mid"], set.Points.Select(p => p.ToString()));
        Assert.Equal([320, 640, 1280, 1280], set.Config.Channels);
        Assert.Equal(expected, set.ParameterCount);
        Assert.Equal(expected, set.TrainableParameters().Sum(p => p.numel()));
        if (variant == UpsamplerVariant.Full)
            Assert.Equal(145_457_280L, expected - set.Config.Channels.Sum()); // the released count, gates excluded
    }

    [Fact]
    public void FullVariantMirrorsReleasedNames()
    {
        using var set = FeatureUpsamplerSet.Create(UpsamplerVariant.Full, ArchConfigs.Unet("unet_sdxl.json"), device: META);
        var names = set.state_dict().Keys.Where(k => k.StartsWith("feature_upsampler0.", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        var expected = new List<string> { "feature_upsampler0.gate" };
        foreach (var b in new[] { "0", "1" })
            foreach (var l in new[] { "emb_layers.1", "in_layers.0", "in_layers.2", "out_layers.0", "out_layers.3" })
                foreach (var w in new[] { "bias", "weight" }) expected.Add($"feature_upsampler0.{b}.{l}.{w}");
        Assert.Equal(expected.Order(StringComparer.Ordinal), names);
        Assert.Equal([1280L, 1280], set.state_dict()["feature_upsampler3.0.emb_layers.1.weight"].shape);
        Assert.Equal([1280L, 1280, 3, 3], set.state_dict()["feature_upsampler2.1.out_layers.3.weight"].shape);
    }

    [Fact]
    public void GroupNormsStartAsPyTorchsAndEveryParameterIsFinite()
    {
        using var set = FeatureUpsamplerSet.Create(UpsamplerVariant.Full, ArchConfigs.Unet("unet_sd21_base.json"), [InjectionPoint.Down(0)]);
        var sd = set.state_dict();
        Assert.Equal(1.0f, sd["feature_upsampler0.0.in_layers.0.weight"].min().item<float>());
        Assert.Equal(1.0f, sd["feature_upsampler0.1.out_layers.0.weight"].max().item<float>());
        Assert.Equal(0.0f, sd["feature_upsampler0.0.in_layers.0.bias"].abs().max().item<float>());
        Assert.All(set.parameters(), p => Assert.True(p.isfinite().all().item<bool>() && p.abs().max().item<float>() < 10));
    }

    [Theory]
    [InlineData(UpsamplerVariant.Full)]
    [InlineData(UpsamplerVariant.Lite)]
    public void FreshSetOutputsExactZerosAtAnySize(UpsamplerVariant variant)
    {
        using var unet = TinyUnet();
        using var set = FeatureUpsamplerSet.Create(variant, unet);
        using var lr = randn(2, 64, 6, 5);
        using var emb = randn(2, unet.Config.TimeEmbedDim);
        using var cond = set.TimeCondition(emb);
        using var phi = set.Upsample(InjectionPoint.Mid, lr, cond, 10, 9); // ratio 1.67 / 1.8: explicit size
        Assert.Equal([2L, 64, 10, 9], phi.shape);
        Assert.Equal(0.0f, phi.abs().max().item<float>());
    }

    [Fact]
    public void ZeroSetHookLeavesTheUNetOutputBitIdenticalAndRunsTheEncoderOncePerForward()
    {
        using var unet = TinyUnet();
        using var set = FeatureUpsamplerSet.Create(UpsamplerVariant.Full, unet);
        using var x = randn(2, 4, 16, 16);
        using var lr = randn(2, 4, 8, 8);
        using var states = randn(2, 77, 32);
        using var t = tensor(500L);
        using var mode = inference_mode();
        using var plain = unet.Forward(x, t, states);
        using var hook = set.CreateHook(unet, lr, states);
        using var tuned = unet.Forward(x, t, states, null, hook.Options);
        using var tuned2 = unet.Forward(x, t, states, null, hook.Options);
        Assert.True(plain.Same(tuned));
        Assert.True(plain.Same(tuned2));
        Assert.Equal(2, hook.EncoderPasses);
    }

    [Theory]
    [InlineData(UpsamplerVariant.Full)]
    [InlineData(UpsamplerVariant.Lite)]
    public void HookedForwardLeaksNoTensors(UpsamplerVariant variant)
    {
        using var unet = TinyUnet();
        using var set = FeatureUpsamplerSet.Create(variant, unet);
        UpsamplerTestSupport.Perturb(set, 3);
        using var x = randn(2, 4, 16, 16);
        using var lr = randn(2, 4, 8, 8);
        using var states = randn(2, 77, 32);
        using var t = tensor(500L);
        using var mode = inference_mode();
        using var hook = set.CreateHook(unet, lr, states);
        unet.Forward(x, t, states, null, hook.Options).Dispose();
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        unet.Forward(x, t, states, null, hook.Options).Dispose();
        unet.Forward(x, t, states, null, hook.Options).Dispose();
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void ReleasedSemanticsAtGateOneAddNearestUpsampledLowResFeatures()
    {
        // A released set straight from its init (out convs zero) adds the nearest-upsampled low-res feature.
        using var unet = TinyUnet();
        using var set = FeatureUpsamplerSet.Create(UpsamplerVariant.Full, unet);
        using (no_grad()) foreach (var p in set.Points) ((FullFeatureUpsampler)set.Upsampler(p)).Gate.fill_(1.0);
        using var lr = randn(1, 64, 4, 4);
        using var emb = randn(1, unet.Config.TimeEmbedDim);
        using var cond = set.TimeCondition(emb);
        using var phi = set.Upsample(InjectionPoint.Down(2), lr, cond, 8, 8);
        using var expected = F.interpolate(lr, [8, 8], mode: InterpolationMode.Nearest);
        Assert.True(phi.Same(expected));
    }

    [Theory]
    [InlineData(UpsamplerVariant.Full)]
    [InlineData(UpsamplerVariant.Lite)]
    public void TrainingForwardGivesGradientsToTheUpsamplersOnly(UpsamplerVariant variant)
    {
        using var unet = TinyUnet();
        foreach (var p in unet.parameters()) p.requires_grad_(false);
        using var set = FeatureUpsamplerSet.Create(variant, unet);
        using var x = randn(2, 4, 16, 16);
        using var lr = randn(2, 4, 8, 8);
        using var states = randn(2, 77, 32);
        using var t = tensor(new long[] { 300, 700 });
        using var target = randn(2, 4, 16, 16);
        using var pred = set.TrainingForward(unet, x, t, lr, states);
        using var loss = F.mse_loss(pred, target);
        loss.backward();
        Assert.All(set.parameters(), p => Assert.True(p.grad is null || p.grad.isfinite().all().item<bool>()));
        // Zero-initialised output layers: their own gradients are non-zero from the first step.
        var outputLayer = variant == UpsamplerVariant.Full ? "feature_upsampler0.gate" : "feature_upsampler0.modulation.weight";
        var grad = set.named_parameters().First(p => p.name == outputLayer).parameter.grad;
        Assert.NotNull(grad);
        Assert.True(grad!.abs().sum().item<float>() > 0);
        Assert.All(unet.parameters(), p => Assert.Null(p.grad));
    }

    [Fact]
    public void HookRejectsAWrongBatch()
    {
        using var unet = TinyUnet();
        using var set = FeatureUpsamplerSet.Create(UpsamplerVariant.Lite, unet);
        using var x = randn(2, 4, 16, 16);
        using var lr = randn(1, 4, 8, 8);
        using var states = randn(2, 77, 32);
        using var hook = set.CreateHook(unet, lr, states);
        using var t = tensor(10L);
        var e = Assert.Throws<InvalidOperationException>(() => unet.Forward(x, t, states, null, hook.Options));
        Assert.Contains("low-res latent batch 1", e.Message);
    }
}
