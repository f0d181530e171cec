using SelfCascade.Cascade;
using SelfCascade.Cascade.Upsamplers;
using SelfCascade.Models.Unet;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Upsamplers;

/// <summary>The tuned cascade on the tiny SD model: zero sets reproduce the tuning-free result bit for bit.</summary>
public sealed class UpsamplerCascadeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-ups-").FullName;
    private readonly StableDiffusionPipeline _pipe;

    public UpsamplerCascadeTests()
    {
        TorchSetup.Ensure();
        _pipe = StableDiffusionPipeline.FromPretrained(TinyModelFolders.BuildSd(Path.Combine(_dir, "sd")));
    }

    public void Dispose()
    {
        _pipe.Dispose();
        Directory.Delete(_dir, true);
    }

    private CascadeResult Run(IStageFeatureInjector? injector, int size = 64, int steps = 5, int images = 1) =>
        CascadeGenerator.Generate(_pipe, new CascadeRequest
        {
            Request = new GenerationRequest("a photo of a red circle") { NegativePrompt = "", Width = size, Height = size, Steps = steps, Seed = 3, Guidance = 7.5, NumImages = images },
            Method = GenerationMethod.SelfCascade,
            BaseSize = new PixelSize(32, 32),
            Injector = injector,
        });

    [Theory]
    [InlineData(UpsamplerVariant.Full)]
    [InlineData(UpsamplerVariant.Lite)]
    public void ZeroInitialisedSetReproducesTuningFreeCascadeBitForBit(UpsamplerVariant variant)
    {
        using var plain = Run(null);
        using var set = FeatureUpsamplerSet.Create(variant, _pipe.Unet);
        using var injector = new FeatureUpsamplerInjector(set);
        using var tuned = Run(injector);
        Assert.Equal(2, tuned.Stages.Count);
        Assert.True(plain.Latents.Same(tuned.Latents), $"{variant}: max diff {(plain.Latents - tuned.Latents).abs().max().item<float>()}");
    }

    [Theory]
    [InlineData(UpsamplerVariant.Full)]
    [InlineData(UpsamplerVariant.Lite)]
    public void ThreeStageRunWithTwoZeroSetsIsBitIdentical(UpsamplerVariant variant)
    {
        using var plain = Run(null, size: 128, steps: 4);
        using var a = FeatureUpsamplerSet.Create(variant, _pipe.Unet);
        using var b = FeatureUpsamplerSet.Create(variant, _pipe.Unet);
        using var injector = new FeatureUpsamplerInjector([a, b]);
        using var tuned = Run(injector, size: 128, steps: 4);
        Assert.Equal(3, tuned.Stages.Count);
        Assert.Same(b, injector.SetForStage(2));
        Assert.True(plain.Latents.Same(tuned.Latents));
    }

    [Theory]
    [InlineData(UpsamplerVariant.Full)]
    [InlineData(UpsamplerVariant.Lite)]
    public void NonZeroSetChangesTheResult(UpsamplerVariant variant)
    {
        using var plain = Run(null);
        using var set = FeatureUpsamplerSet.Create(variant, _pipe.Unet);
        UpsamplerTestSupport.Perturb(set, 7);
        using var injector = new FeatureUpsamplerInjector(set);
        using var tuned = Run(injector);
        double diff = (plain.Latents - tuned.Latents).abs().max().item<float>();
        Assert.True(diff > 1e-4, $"{variant}: non-zero upsamplers changed the latents by only {diff}");
        Assert.False(tuned.Latents.isnan().any().item<bool>());
    }

    [Fact]
    public void ReleasedPlainUNetSwitchSkipsLateSteps()
    {
        using var set = FeatureUpsamplerSet.Create(UpsamplerVariant.Lite, _pipe.Unet);
        UpsamplerTestSupport.Perturb(set, 11);
        // Stage 1 of 5 DDIM steps at strength 0.7 runs t = 401, 201, 1: the switch makes t = 1 plain.
        using (var injector = new FeatureUpsamplerInjector(set, new FeatureUpsamplerInjectorOptions { PlainUNetAtOrBelowTimestep = 100 }))
        using (var lr = zeros(1, 4, 4, 4))
        using (var states = zeros(2, 77, 32))
        using (var injection = injector.BeginStage(new CascadeStageContext(1, lr, states, 2, new PixelSize(32, 32), new PixelSize(64, 64), _pipe.Unet))!)
        {
            Assert.Null(injection.OptionsForStep(1));
            Assert.Null(injection.OptionsForStep(100));
            Assert.NotNull(injection.OptionsForStep(101));
            Assert.NotNull(injection.OptionsForStep(401));
        }
        using var off = new FeatureUpsamplerInjector(set);
        using var on = new FeatureUpsamplerInjector(set, new FeatureUpsamplerInjectorOptions { PlainUNetAtOrBelowTimestep = 100 });
        using var all = new FeatureUpsamplerInjector(set, new FeatureUpsamplerInjectorOptions { PlainUNetAtOrBelowTimestep = 1000 });
        using var plain = Run(null);
        using var a = Run(off);
        using var b = Run(on);
        using var c = Run(all);
        Assert.False(a.Latents.Same(b.Latents));
        Assert.True(plain.Latents.Same(c.Latents), "every step plain must equal the tuning-free cascade");
    }

    [Fact]
    public void SetForAnotherUNetIsAClearError()
    {
        var sd21 = ArchConfigs.Unet("unet_sd21_base.json");
        using var set = FeatureUpsamplerSet.Create(UpsamplerVariant.Lite, sd21);
        using var injector = new FeatureUpsamplerInjector(set);
        var e = Assert.Throws<InvalidOperationException>(() => Run(injector));
        Assert.Contains("does not fit this UNet", e.Message);
        Assert.Contains("point down0: upsampler has 320 channels, the UNet has 32", e.Message);
    }

    [Fact]
    public void CascadeWithUpsamplersLeaksNoTensors()
    {
        using var set = FeatureUpsamplerSet.Create(UpsamplerVariant.Full, _pipe.Unet);
        UpsamplerTestSupport.Perturb(set, 5);
        using var injector = new FeatureUpsamplerInjector(set);
        Run(null, images: 2).Dispose();
        Run(injector, images: 2).Dispose();
        long p0 = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Run(null, images: 2).Dispose();
        long p1 = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Run(injector, images: 2).Dispose();
        long p2 = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Assert.True(p1 == p0 && p2 == p1, $"plain run: {p1 - p0} live tensors more; with upsamplers: {p2 - p1} more");
    }
}
