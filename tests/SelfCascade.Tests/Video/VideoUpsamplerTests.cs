using SelfCascade.Cascade;
using SelfCascade.Cascade.Upsamplers;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Support;
using SelfCascade.Tests.Upsamplers;
using SelfCascade.Video;
using SelfCascade.Video.Cascade;
using SelfCascade.Video.Models;
using SelfCascade.Video.Pipelines;
using SelfCascade.Video.Unet3D;
using SelfCascade.Video.Upsamplers;
using SelfCascade.Tests.Video.Unet3D;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Video;

/// <summary>
/// The tuned video cascade (issue 11 item 3): image upsampler sets run per frame inside AnimateDiff's UNet. A zero
/// set reproduces the tuning-free video cascade bit for bit; with the motion modules zeroed, every frame of a video
/// stage is the image cascade's stage on that frame's latent with the same upsampler set and the same noise.
/// </summary>
public sealed class VideoUpsamplerTests : IDisposable
{
    private const string Prompt = "a red ball bouncing on a green floor";
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-vups-").FullName;
    private readonly VideoPipeline _pipe;

    public VideoUpsamplerTests()
    {
        TorchSetup.Ensure();
        _pipe = VideoPipeline.FromAnimateDiff(VideoFixtures.BuildAnimateDiff(Path.Combine(_dir, "model")));
    }

    public void Dispose()
    {
        _pipe.Dispose();
        Directory.Delete(_dir, true);
    }

    private UNetMotionModel Motion => (UNetMotionModel)_pipe.Unet;

    // Stage 1 of 5 DDIM (linspace) steps at strength 0.6 runs t = 500, 250, 0 (with 3 steps it would run only t = 0,
    // where DDIM without set_alpha_to_one returns its input whatever the UNet predicts).
    private VideoRequest Request(FeatureUpsamplerInjector? ups, int videos = 1, int frames = 2, int? videosPerCall = null) => new()
    {
        Prompt = Prompt, NegativePrompt = "", Frames = frames, NumVideos = videos, Width = 64, Height = 64, Steps = 5, Guidance = 6.0,
        Seed = 3, BaseSize = new PixelSize(32, 32), PivotStrength = 0.6, Method = GenerationMethod.SelfCascade, Upsamplers = ups,
        VideosPerUNetCall = videosPerCall,
    };

    [Fact]
    public void ZeroInitialisedSetReproducesTheTuningFreeVideoCascadeBitForBit() => ZeroSetIsTuningFree(UpsamplerVariant.Lite);

    [Fact]
    [Trait("Category", "Slow")]
    public void ZeroInitialisedFullSetReproducesTheTuningFreeVideoCascadeBitForBit() => ZeroSetIsTuningFree(UpsamplerVariant.Full);

    private void ZeroSetIsTuningFree(UpsamplerVariant variant)
    {
        using var plain = VideoCascadeGenerator.Generate(_pipe, Request(null));
        using var set = FeatureUpsamplerSet.Create(variant, Motion.Unet);
        using var injector = new FeatureUpsamplerInjector(set);
        using var tuned = VideoCascadeGenerator.Generate(_pipe, Request(injector));
        Assert.Equal(2, tuned.Stages.Count);
        Assert.True(Parity.Same(plain.Latents, tuned.Latents), $"{variant}: max diff {Parity.MaxAbsDiff(plain.Latents, tuned.Latents):G4}");

        UpsamplerTestSupport.Perturb(set, 7);
        using var changed = VideoCascadeGenerator.Generate(_pipe, Request(injector));
        Assert.True(Parity.MaxAbsDiff(plain.Latents, changed.Latents) > 1e-4, $"{variant}: a non-zero set must change the video");
        Assert.False(changed.Latents.isnan().any().item<bool>());
    }

    private void ZeroMotionOutputs()
    {
        using var _ = no_grad();
        foreach (var m in Motion.Adapter.AllModules())
        {
            m.ProjOut.weight!.zero_();
            m.ProjOut.bias!.zero_();
        }
    }

    /// <summary>
    /// Motion modules zeroed (frames independent): stage 1 of the video cascade on a random (2 videos, 2 frames) pivot
    /// equals, frame by frame, the image cascade's stage 1 on the 4 frames as a batch of images, both with the same
    /// perturbed set. The video stage's noise randn((B, F, C, h, w)) is the image stage's randn((B*F, C, h, w)) (same
    /// generator, same order), so the check is tight; a set injected at other points, a low-res video folded in another
    /// frame order or text states not repeated per frame would each change some frame.
    /// </summary>
    [Fact]
    public void WithTemporalLayersZeroEveryFrameIsTheImageCascadeStage() => FramesAreImageStages(UpsamplerVariant.Lite, null);

    /// <summary>The same for the full variant, and with the UNet call split over videos (the low-res video sliced to match).</summary>
    [Theory]
    [Trait("Category", "Slow")]
    [InlineData(UpsamplerVariant.Full, null)]
    [InlineData(UpsamplerVariant.Lite, 1)]
    public void WithTemporalLayersZeroEveryFrameIsTheImageCascadeStageFullAndSplit(UpsamplerVariant variant, int? videosPerCall) =>
        FramesAreImageStages(variant, videosPerCall);

    private void FramesAreImageStages(UpsamplerVariant variant, int? videosPerCall)
    {
        ZeroMotionOutputs();
        using var set = FeatureUpsamplerSet.Create(variant, Motion.Unet, [new InjectionPoint(Models.Unet.UNetBlockKind.Down, 0),
            new InjectionPoint(Models.Unet.UNetBlockKind.Down, 1), new InjectionPoint(Models.Unet.UNetBlockKind.Mid, 0)]);
        UpsamplerTestSupport.Perturb(set, 9, scale: 0.2);
        using var injector = new FeatureUpsamplerInjector(set);
        var request = Request(injector, videos: 2, frames: 2, videosPerCall);
        var stage = VideoCascadeGenerator.Plan(_pipe, 64, 64, request).Stages[1];
        using var g = new Generator(21);
        using var previous = randn([2, 4, 2, 16, 16], generator: g);
        using var emb = _pipe.Image.EncodePrompt(Prompt, "", true);

        using var video = VideoCascadeGenerator.RunStage(_pipe, request, previous, stage, emb, 11, null, default, 2);
        using var frames = VideoFrames.Fold(previous).contiguous();
        var imageRequest = new CascadeRequest
        {
            Request = new GenerationRequest(Prompt) { NegativePrompt = "", Width = 64, Height = 64, Steps = 5, Guidance = 6.0, NumImages = 4 },
            Method = GenerationMethod.SelfCascade, PivotStrength = 0.6, Injector = injector,
        };
        using var images = CascadeGenerator.RunStage(_pipe.Image, imageRequest, frames, new PixelSize(32, 32), stage, emb, 11, null, default, 2);
        using var asVideo = VideoFrames.Unfold(images, 2);
        Assert.Equal(new long[] { 2, 4, 2, 32, 32 }, video.shape);
        for (int b = 0; b < 2; b++)
            for (int f = 0; f < 2; f++)
                Parity.AssertClose(video.select(0, b).select(1, f), asVideo.select(0, b).select(1, f), $"{variant}: video {b} frame {f}");

        // Not vacuous: the set moves the stage's result well beyond the tolerance.
        using var plain = VideoCascadeGenerator.RunStage(_pipe, Request(null, videos: 2, frames: 2), previous, stage, emb, 11, null, default, 2);
        Assert.True(Parity.MaxAbsDiff(plain, video) > 1e-2, $"{variant}: the upsamplers changed the stage by only {Parity.MaxAbsDiff(plain, video):G4}");
    }

    [Fact]
    [Trait("Category", "Slow")]
    public void SplittingTheUNetCallOverVideosGivesTheSameVideos()
    {
        using var set = FeatureUpsamplerSet.Create(UpsamplerVariant.Full, Motion.Unet);
        UpsamplerTestSupport.Perturb(set, 5);
        using var injector = new FeatureUpsamplerInjector(set);
        using var whole = VideoCascadeGenerator.Generate(_pipe, Request(injector, videos: 2));
        using var split = VideoCascadeGenerator.Generate(_pipe, Request(injector, videos: 2, videosPerCall: 1));
        Parity.AssertClose(split.Latents, whole.Latents, "one video per UNet call vs all at once");
    }

    [Fact]
    public void PlainUNetSwitchAndLeaks()
    {
        using var set = FeatureUpsamplerSet.Create(UpsamplerVariant.Lite, Motion.Unet);
        UpsamplerTestSupport.Perturb(set, 13);
        using var all = new FeatureUpsamplerInjector(set, new FeatureUpsamplerInjectorOptions { PlainUNetAtOrBelowTimestep = 1000 });
        using var plain = VideoCascadeGenerator.Generate(_pipe, Request(null));
        using var skipped = VideoCascadeGenerator.Generate(_pipe, Request(all));
        Assert.True(Parity.Same(plain.Latents, skipped.Latents), "every step plain must equal the tuning-free video cascade");

        using var injector = new FeatureUpsamplerInjector(set);
        VideoCascadeGenerator.Generate(_pipe, Request(injector, videosPerCall: 1)).Dispose();
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        VideoCascadeGenerator.Generate(_pipe, Request(injector, videosPerCall: 1)).Dispose();
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void ASetForAnotherUNetIsAClearErrorBeforeAnythingRuns()
    {
        using var set = FeatureUpsamplerSet.Create(UpsamplerVariant.Lite, ArchConfigs.Unet("unet_sd21_base.json"));
        using var injector = new FeatureUpsamplerInjector(set);
        var e = Assert.Throws<InvalidOperationException>(() => VideoCascadeGenerator.Validate(_pipe, Request(injector)));
        Assert.Contains("does not fit this UNet", e.Message);
        Assert.Contains("point down0: upsampler has 320 channels, the UNet has 32", e.Message);
    }

    /// <summary>Any video UNet but AnimateDiff's or a UNet3D (here: the motion model behind another type).</summary>
    private sealed class OtherVideoUNet(IVideoUNet inner) : IVideoUNet
    {
        public int InChannels => inner.InChannels;
        public int? MaxFrames => inner.MaxFrames;
        public int NumUpsamplers => inner.NumUpsamplers;
        public Device Device => inner.Device;
        public ScalarType DType => inner.DType;
        public Tensor Forward(Tensor sample, Tensor timestep, Tensor encoderHiddenStates, VideoUNetForwardOptions? options = null) =>
            inner.Forward(sample, timestep, encoderHiddenStates, options);
    }

    [Fact]
    public void OtherVideoUNetsSayTheyCannotTakeUpsamplers()
    {
        using var set = FeatureUpsamplerSet.Create(UpsamplerVariant.Lite, Motion.Unet);
        using var injector = new FeatureUpsamplerInjector(set);
        var image = StableDiffusionPipeline.FromPretrained(Path.Combine(_dir, "model"));
        using (var other = new VideoPipeline(image, new OtherVideoUNet(Motion)))
        {
            var e = Assert.Throws<NotSupportedException>(() => VideoCascadeGenerator.Validate(other, Request(injector)));
            Assert.Contains("AnimateDiff and ModelScope-style UNet3D models only", e.Message);
            // The baselines ignore the upsamplers.
            VideoCascadeGenerator.Validate(other, new VideoRequest { Prompt = Prompt, Frames = 2, Method = GenerationMethod.Direct, Upsamplers = injector });
        }

        using var t2v = TextToVideoSdPipeline.FromPretrained(Unet3DFixtures.BuildFolder(Path.Combine(_dir, "ms")));
        using var lowRes = zeros([1, 4, 2, 4, 4]);
        using var states = zeros(1, 77, 32);
        using var stage = new VideoUpsamplerStage(injector, 1, Motion.Unet, lowRes, states, 1);
        using var sample = zeros([1, 4, 2, 8, 8]);
        using var t = tensor(new long[] { 500 });
        using var ctx = zeros(1, 77, t2v.Unet.Config.CrossAttentionDim);
        // A UNet3D takes only sets prepared on its own spatial half (this one is AnimateDiff's image UNet, of the same shape).
        var e3d = Assert.Throws<ArgumentException>(() => t2v.Unet.Forward(sample, t, ctx, stage.OptionsForStep(500)));
        Assert.Contains("prepared for another UNet than this UNet3D's spatial half", e3d.Message);
    }
}
