using SelfCascade.Cascade;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Support;
using SelfCascade.Video.Cascade;
using SelfCascade.Video.Pipelines;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Video;

/// <summary>Frame-chunked and tiled VAE decode of videos, the video baselines, and request validation.</summary>
public sealed class VideoDecodeAndBaselineTests : IDisposable
{
    private const string Prompt = "a red ball bouncing on a green floor";
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-vdec-").FullName;
    private readonly VideoPipeline _pipe;

    public VideoDecodeAndBaselineTests()
    {
        TorchSetup.Ensure();
        _pipe = VideoPipeline.FromAnimateDiff(VideoFixtures.BuildAnimateDiff(Path.Combine(_dir, "model")));
    }

    public void Dispose()
    {
        _pipe.Dispose();
        Directory.Delete(_dir, true);
    }

    [Fact]
    public void FrameChunkedDecodeIsThePerFrameDecodeUntiledAndTiled()
    {
        using var g = new Generator(7);
        using var latents = randn([2, 4, 5, 24, 24], generator: g);
        var tiles = new TiledVaeOptions { TileSampleSize = 32, OverlapFactor = 0.25 };
        foreach (var tiling in new[] { VaeTiling.Off, VaeTiling.On })
        {
            using var all = _pipe.DecodeVideo(latents, framesPerDecode: 10, tiling, tiles);
            using var chunked = _pipe.DecodeVideo(latents, framesPerDecode: 3, tiling, tiles);
            Assert.Equal(new long[] { 2, 3, 5, 48, 48 }, all.shape);
            Parity.AssertClose(chunked, all, $"{tiling}: 3 frames per decode vs all at once");
            // Frame (b, f) of the video is the image pipeline's decode of that frame's latent.
            foreach (var (b, f) in new[] { (0, 0), (1, 3) })
            {
                using var scope = NewDisposeScope();
                var image = _pipe.Image.DecodeLatents(latents.select(0, b).select(1, f).unsqueeze(0), tiling, tiles);
                Parity.AssertClose(all.select(0, b).select(1, f).unsqueeze(0), image, $"{tiling}: frame ({b}, {f})");
            }
        }
        using var untiled = _pipe.DecodeVideo(latents, 4, VaeTiling.Off);
        using var tiled = _pipe.DecodeVideo(latents, 4, VaeTiling.On, tiles);
        Assert.True(Parity.MaxAbsDiff(untiled, tiled) > 1e-4, "the tiled decode must actually tile (blending differs slightly)");
    }

    [Fact]
    public void DenoiseAndDecodeKeepTheLiveTensorCountFlat()
    {
        using var g = new Generator(8);
        using var latents = randn([1, 4, 3, 8, 8], generator: g);
        using var emb = _pipe.Image.EncodePrompt(Prompt, "", true);
        _pipe.Image.Scheduler.SetTimesteps(5);
        void Once()
        {
            _pipe.Denoise(latents, [999.0, 749.0], emb, 6.0, null, null, 1).Dispose();
            _pipe.DecodeVideo(latents, 2).Dispose();
        }
        Once();
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Once();
        Once();
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    private VideoResult Run(GenerationMethod method, int size = 64, int frames = 4) => VideoCascadeGenerator.Generate(_pipe, new VideoRequest
    {
        Prompt = Prompt, NegativePrompt = "", Frames = frames, Width = size, Height = size, Steps = 3, Guidance = 6.0, Seed = 3,
        BaseSize = new PixelSize(32, 32), PivotStrength = 0.6, Method = method,
    });

    [Fact]
    public void BaselinesGiveVideosOfTheTargetSize()
    {
        using var direct = Run(GenerationMethod.Direct);
        using var attn = Run(GenerationMethod.AttnScale);
        using var upscale = Run(GenerationMethod.UpscaleOnly);
        using var cascade = Run(GenerationMethod.SelfCascade);
        foreach (var r in new[] { direct, attn, upscale, cascade })
        {
            Assert.Single(r.Videos);
            Assert.Equal(4, r.Videos[0].Length);
            Assert.All(r.Videos[0], i => Assert.Equal((64, 64), (i.Width, i.Height)));
        }
        Assert.Equal(new long[] { 1, 4, 4, 32, 32 }, direct.Latents.shape);
        // attn-scale at 4x the native pixels scales the spatial logits: another video than direct.
        Assert.True(Parity.MaxAbsDiff(direct.Latents, attn.Latents) > 1e-3);
        // upscale-only: the base video (32x32 latents of 16x16) with every frame resized in pixel space.
        Assert.Equal(new long[] { 1, 4, 4, 16, 16 }, upscale.Latents.shape);
        using var baseVideo = _pipe.DecodeVideo(upscale.Latents.to(_pipe.Device));
        var baseFrame = VideoPipeline.ToFrames(baseVideo)[0][2];
        using var t = baseFrame.ToTensor();
        using var up = nn.functional.interpolate(t, [64, 64], mode: InterpolationMode.Bicubic, align_corners: false).clamp(-1, 1);
        Assert.Equal(RgbImage.FromDecoderOutput(up).Pixels, upscale.Videos[0][2].Pixels);
        Assert.Equal(2, cascade.Stages.Count);
    }

    [Theory]
    [InlineData(0, "frames must be at least 1")]
    [InlineData(33, "frames must be at most 32")]
    public void FrameCountsAreCheckedBeforeAnythingRuns(int frames, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => Run(GenerationMethod.SelfCascade, frames: frames));
        Assert.Contains(expected, e.Message);
    }
}
