using SelfCascade.Cascade;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Support;
using SelfCascade.Video.Cascade;
using SelfCascade.Video.Pipelines;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Video;

/// <summary>
/// AnimateDiffPipeline text-to-video (animatediff_tiny/pipeline_t2v) and the video self-cascade stage
/// (animatediff_tiny/pipeline_cascade) reproduced from the prompt through every component.
/// </summary>
public sealed class AnimateDiffPipelineTests : IDisposable
{
    private const string Prompt = "a red ball bouncing on a green floor";
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-animdiff-").FullName;
    private readonly VideoPipeline _pipe;

    public AnimateDiffPipelineTests()
    {
        TorchSetup.Ensure();
        _pipe = VideoPipeline.FromAnimateDiff(VideoFixtures.BuildAnimateDiff(Path.Combine(_dir, "model")));
    }

    public void Dispose()
    {
        _pipe.Dispose();
        Directory.Delete(_dir, true);
    }

    /// <summary>(B, 3, F, H, W) in [-1, 1] -> the fixtures' (F, H, W, 3) in [0, 1] of the first video.</summary>
    private static Tensor AsFramesFloat(Tensor video) => (video[0].permute(1, 2, 3, 0) / 2 + 0.5).clamp(0, 1);

    [Fact]
    public void TextToVideoReproducesDiffusers()
    {
        using var f = VideoFixtures.Open("animatediff_tiny", "pipeline_t2v", "io.safetensors");
        var report = new ParityReport();
        var scheduler = _pipe.Image.Scheduler;
        scheduler.SetTimesteps(5);
        Assert.Equal(new double[] { 999, 749, 500, 250, 0 }, scheduler.Timesteps.ToArray());
        using var emb = _pipe.Image.EncodePrompt(Prompt, "", true);
        report.Close(emb.Positive, f.Read("prompt_embeds"), "prompt_embeds");
        report.Close(emb.Negative!, f.Read("negative_prompt_embeds"), "negative_prompt_embeds");
        using (var g = new Generator(0))
        using (var noise = _pipe.InitialNoise(g, 1, 8, 64, 64))
            report.Close(noise, f.Read("initial_latents"), "initial_latents");
        using var initial = f.Read("initial_latents");
        using (var step0 = _pipe.Denoise(initial, [999.0], emb, 6.0, null))
            report.Close(step0, f.Read("latents_after_step0"), "latents_after_step0");

        using var result = VideoCascadeGenerator.Generate(_pipe, new VideoRequest
        {
            Prompt = Prompt, NegativePrompt = "", Frames = 8, Width = 64, Height = 64, Steps = 5, Guidance = 6.0, Seed = 0,
            Method = GenerationMethod.Direct,
        });
        report.Close(result.Latents, f.Read("latents_out"), "latents_out");
        using var video = _pipe.DecodeVideo(result.Latents, framesPerDecode: 3);
        using var frames = AsFramesFloat(video);
        report.Close(frames, f.Read("frames_float"), "frames_float");
        report.ThrowIfAny();

        // The 8-bit frames: round(clip(x) * 255), +-1 where the float sits at a rounding edge.
        var expected = File.ReadAllBytes(VideoFixtures.PathOf("animatediff_tiny", "pipeline_t2v", "frames_uint8.rgb"));
        Assert.Single(result.Videos);
        Assert.Equal(8, result.Videos[0].Length);
        AssertBytesClose(expected, result.Videos[0].SelectMany(i => i.Pixels).ToArray(), "frames_uint8");
    }

    internal static void AssertBytesClose(byte[] expected, byte[] ours, string what)
    {
        Assert.Equal(expected.Length, ours.Length);
        int off = 0, worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            int d = Math.Abs(expected[i] - ours[i]);
            if (d > 0) off++;
            worst = Math.Max(worst, d);
        }
        Assert.True(worst <= 1 && off <= expected.Length / 100, $"{what}: {off} bytes differ, worst by {worst}");
    }

    [Fact]
    public void CascadeStageReproducesDiffusers()
    {
        using var f = VideoFixtures.Open("animatediff_tiny", "pipeline_cascade", "io.safetensors");
        var report = new ParityReport();
        using var emb = _pipe.Image.EncodePrompt(Prompt, "", true);
        var request = new VideoRequest { Prompt = Prompt, NegativePrompt = "", Frames = 8, Steps = 5, Guidance = 6.0, Seed = 1 };

        // Base: text-to-video at 32x32, seed 1.
        using var baseLatents = VideoCascadeGenerator.TextToVideo(_pipe, request, emb, 6.0, 32, 32, 5, 1, null, null, default, 0, 2);
        report.Close(baseLatents, f.Read("base_latents_out"), "base_latents_out");
        using (var baseVideo = _pipe.DecodeVideo(baseLatents))
        using (var baseFrames = AsFramesFloat(baseVideo))
            report.Close(baseFrames, f.Read("base_frames_float"), "base_frames_float");

        // Stage pieces from the fixture's own base latents: pivot, noise in (B, F, C, h, w) order, add_noise at 500.
        using var refBase = f.Read("base_latents_out");
        using var pivot = VideoCascadeGenerator.UpsampleFrames(refBase, 32, 32);
        report.Close(pivot, f.Read("stage_pivot_upsampled"), "stage_pivot_upsampled");
        var (timesteps, start) = _pipe.Image.Scheduler.GetImg2ImgTimesteps(5, 0.6);
        Assert.Equal(2, start);
        Assert.Equal(new double[] { 500, 250, 0 }, timesteps.ToArray());
        using (var g = new Generator(2))
        using (var noise = VideoCascadeGenerator.StageNoise(g, pivot.shape, _pipe.Device))
        {
            using var refNoise = f.Read("stage_noise");
            Parity.AssertEqual(noise, refNoise, "stage_noise (bit for bit)");
            using var noised = _pipe.Image.Scheduler.AddNoise(pivot, noise, timesteps[0]);
            report.Close(noised, f.Read("stage_noised_latents"), "stage_noised_latents");
        }
        using var refNoised = f.Read("stage_noised_latents");
        using (var step0 = _pipe.Denoise(refNoised, [500.0], emb, 6.0, null))
            report.Close(step0, f.Read("stage_latents_after_step0"), "stage_latents_after_step0");

        // The stage as the cascade runs it, from the fixture's base latents.
        var stage = new ScaleStage(1, new PixelSize(64, 64), _pipe.VaeScaleFactor, 5, 0.6, 6.0, 2, 2, 4, 0.09);
        using var stageLatents = VideoCascadeGenerator.RunStage(_pipe, request, refBase, stage, emb, 2, null, default, 2);
        report.Close(stageLatents, f.Read("stage_latents_out"), "stage_latents_out");
        using (var video = _pipe.DecodeVideo(stageLatents))
        using (var frames = AsFramesFloat(video))
            report.Close(frames, f.Read("stage_frames_float"), "stage_frames_float");
        report.ThrowIfAny();
    }

    [Fact]
    public void WholeVideoCascadeFromThePromptReproducesTheFixture()
    {
        using var f = VideoFixtures.Open("animatediff_tiny", "pipeline_cascade", "io.safetensors");
        using var result = VideoCascadeGenerator.Generate(_pipe, new VideoRequest
        {
            Prompt = Prompt, NegativePrompt = "", Frames = 8, Width = 64, Height = 64, Steps = 5, Guidance = 6.0, Seed = 1,
            BaseSize = new PixelSize(32, 32), PivotStrength = 0.6, KeepStageFrames = true, VideosPerUNetCall = 1,
        });
        Assert.Equal(2, result.Stages.Count);
        Assert.Equal(new[] { 5, 3 }, result.Stages.Select(s => s.Steps));
        var report = new ParityReport();
        report.Close(result.Latents, f.Read("stage_latents_out"), "stage_latents_out (seed 1 base, seed 2 stage)");
        report.ThrowIfAny();
        var expected = File.ReadAllBytes(VideoFixtures.PathOf("animatediff_tiny", "pipeline_cascade", "stage_frames_uint8.rgb"));
        AssertBytesClose(expected, result.Videos[0].SelectMany(i => i.Pixels).ToArray(), "stage_frames_uint8");
        var baseExpected = File.ReadAllBytes(VideoFixtures.PathOf("animatediff_tiny", "pipeline_cascade", "base_frames_uint8.rgb"));
        Assert.Single(result.StageVideos);
        AssertBytesClose(baseExpected, result.StageVideos[0].SelectMany(i => i.Pixels).ToArray(), "base_frames_uint8");
    }
}
