using System.Text.RegularExpressions;
using SelfCascade.IO;
using SelfCascade.Models;
using SelfCascade.Models.Unet;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Support;
using SelfCascade.Video.Cascade;
using SelfCascade.Video.Pipelines;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Video.Unet3D;

/// <summary>
/// The ModelScope-style UNet3D (TextToVideoSD folder) inside the video cascade (<see cref="VideoPipeline"/> /
/// <see cref="VideoCascadeGenerator"/>): the direct method against modelscope_tiny/pipeline_t2v (diffusers); the self-cascade, which the fixtures do not cover for UNet3D, against
/// a per-frame image pipeline when the temporal layers are zero (frames are then independent: each frame of the video
/// cascade is the image cascade's recipe run on that frame's slice of the same noise).
/// </summary>
public sealed partial class TextToVideoSdCascadeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-t2v-cascade-").FullName;
    public TextToVideoSdCascadeTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    private const string Prompt = "a blue square sliding to the right";

    [Fact]
    public void TheFolderIsDetectedAndTheDirectMethodIsDiffusersPipeline()
    {
        var folder = Unet3DFixtures.BuildFolder(_dir);
        Assert.True(VideoPipeline.IsTextToVideoSdFolder(folder));
        Assert.False(VideoPipeline.IsTextToVideoSdFolder(TinyModelFolders.BuildSd1(Path.Combine(_dir, "sd1"))));
        Assert.False(VideoPipeline.IsTextToVideoSdFolder(Path.Combine(folder, "unet", "config.json")));

        using var pipe = VideoPipeline.FromPretrained(folder);
        Assert.NotNull(pipe.TextToVideo);
        Assert.False(pipe.HasImagePipeline);
        Assert.Throws<NotSupportedException>(() => pipe.Image);
        Assert.Equal("TextToVideoSD", pipe.Kind);
        Assert.Equal(32, pipe.NativeSize); // sample_size 16 x VAE factor 2
        Assert.Equal(9.0, pipe.DefaultGuidance); // TextToVideoSDPipeline's default guidance_scale
        Assert.Null(pipe.Unet.MaxFrames);

        using var result = VideoCascadeGenerator.Generate(pipe, new VideoRequest
        {
            Prompt = Prompt, NegativePrompt = "", Frames = 8, Width = 64, Height = 64, Steps = 5, Guidance = 6.0, Seed = 2,
            Method = GenerationMethod.Direct,
        });
        using var f = Unet3DFixtures.Open("pipeline_t2v", "io.safetensors");
        using var scope = NewDisposeScope();
        Parity.AssertClose(result.Latents, f.Read("latents_out"), "latents_out (video cascade, direct)");
        var reference = tensor(File.ReadAllBytes(Unet3DFixtures.ModelScope("pipeline_t2v", "frames_uint8.rgb")), [8, 64, 64, 3]).to(ScalarType.Int32);
        var ours = FramesTensor(result.Videos[0]);
        Assert.True((ours - reference).abs().max().item<int>() <= 1, "uint8 frames differ from diffusers' by more than 1");

        // GenerateVideoUnet3DTests checks the CLI's frames (this path) against TextToVideoSdPipeline.Generate byte for byte.
    }

    /// <summary>(F, H, W, 3) int32 of 8-bit frames.</summary>
    internal static Tensor FramesTensor(IReadOnlyList<SelfCascade.Imaging.RgbImage> frames) =>
        stack(frames.Select(im => tensor(im.Pixels, [im.Height, im.Width, 3])).ToArray(), 0).to(ScalarType.Int32);

    [GeneratedRegex(@"(^|\.)(temp_convs\.\d+\.conv4\.3|temp_attentions\.\d+\.proj_out|transformer_in\.proj_out)\.(weight|bias)$")]
    private static partial Regex TemporalOutput();

    [Fact]
    public void WithZeroTemporalLayersEveryFrameOfTheCascadeIsThePerFrameImageCascade()
    {
        using var pipe = VideoPipeline.FromPretrained(Unet3DFixtures.BuildFolder(_dir));
        var t2v = pipe.TextToVideo!;
        int zeroed = 0;
        using (no_grad())
            foreach (var (name, p) in t2v.Unet.named_parameters())
                if (TemporalOutput().IsMatch(name)) { p.zero_(); zeroed++; }
        Assert.Equal(2 * 13, zeroed);

        const int frames = 3, steps = 4;
        const long seed = 11;
        const double guidance = 6.0;
        var request = new VideoRequest
        {
            Prompt = Prompt, NegativePrompt = "", Frames = frames, Width = 64, Height = 48, Steps = steps, Guidance = guidance, Seed = seed,
            Method = GenerationMethod.SelfCascade,
        };
        using var result = VideoCascadeGenerator.Generate(pipe, request);
        var plan = result.Plan!;
        Assert.Equal(2, plan.Stages.Count);
        var (b, s1) = (plan.Base, plan.Stages[1]);

        // The image pipeline on the same text encoder, VAE and scheduler, its UNet2D from the UNet3D's spatial weights.
        UNet2DConditionModel unet2d;
        using (ModelConstruction.On(CPU, ScalarType.Float32)) unet2d = new UNet2DConditionModel(UNet2DConditionConfig.FromJson(ConfigJson.Parse(Unet3DFixtures.SpatialImageConfigJson)));
        var load = WeightLoader.Load(unet2d, WeightLoader.ResolveWeightFiles(Unet3DFixtures.ModelScope("unet")), strict: false);
        Assert.Empty(load.Missing);
        unet2d.eval();
        using var image = new StableDiffusionPipeline(ModelFamily.StableDiffusion2, unet2d, t2v.Vae, t2v.Scheduler, t2v.Prompts, CPU,
            ScalarType.Float32, [unet2d]);
        using var scope = NewDisposeScope();
        using var emb = image.EncodePrompt(Prompt, "", true);

        // Stage 0: the video's noise randn((1, C, F, h, w)) of seed + 0; frame f is the slice [:, :, f] (frames -> batch).
        var g0 = new Generator((ulong)seed);
        var noise0 = randn([1, 4, frames, b.LatentHeight, b.LatentWidth], generator: g0);
        image.Scheduler.SetTimesteps(b.Steps);
        var baseFrames = image.Denoise(noise0[0].permute(1, 0, 2, 3).contiguous(), image.Scheduler.Timesteps, emb, guidance, frames,
            b.Width, b.Height, g0);

        // Stage 1: each frame's latent upsampled on its own, noise randn((1, F, C, H, W)) of seed + 1 (frame f = [0, f]).
        var g1 = new Generator((ulong)(seed + 1));
        var pivot = nn.functional.interpolate(baseFrames, [s1.LatentHeight, s1.LatentWidth], mode: InterpolationMode.Bilinear, align_corners: false);
        var noise1 = randn([1, frames, 4, s1.LatentHeight, s1.LatentWidth], generator: g1)[0];
        var (timesteps, _) = image.Scheduler.GetImg2ImgTimesteps(s1.Steps, s1.Strength);
        var noisy = image.Scheduler.AddNoise(pivot, noise1, timesteps[0]);
        var expected = image.Denoise(noisy, timesteps, emb, s1.GuidanceScale, frames, s1.Width, s1.Height, g1);

        var ours = result.Latents[0].permute(1, 0, 2, 3);
        Parity.AssertClose(ours, expected, "video self-cascade (zero temporal layers) vs per-frame image recipe");
        // Not trivially equal: the frames differ from each other.
        Assert.True(Parity.MaxAbsDiff(expected[0], expected[frames - 1]) > 1e-2);
    }

    [Fact]
    public void AStochasticSchedulerStepsOnTheFoldedFramesAsTextToVideoSdPipeline()
    {
        // diffusers' TextToVideoSDPipeline steps the scheduler on (B*F, C, h, w): a scheduler that draws noise (DDPM)
        // draws it in that layout, not the video's (B, C, F, h, w) one (as AnimateDiffPipeline does).
        using var pipe = VideoPipeline.FromPretrained(Unet3DFixtures.BuildFolder(_dir), options: new PipelineOptions { Scheduler = "ddpm" });
        var t2v = pipe.TextToVideo!;
        Assert.Equal("DDPMScheduler", pipe.Scheduler.ClassName);
        using var scope = NewDisposeScope();
        using var emb = pipe.EncodePrompt(Prompt, "", true);
        using var g = new Generator(4);
        var noise = pipe.InitialNoise(g, 1, 3, 32, 32);
        pipe.Scheduler.SetTimesteps(10);
        var ts = pipe.Scheduler.Timesteps.Take(2).ToList();
        using var g1 = new Generator(9);
        var ours = pipe.Denoise(noise.clone(), ts, emb, 6.0, g1);
        using var g2 = new Generator(9);
        var reference = t2v.Denoise(noise.clone(), ts, emb, 6.0, g2);
        Parity.AssertEqual(ours, reference, "VideoPipeline.Denoise vs TextToVideoSdPipeline.Denoise (DDPM, 2 steps)");
    }

    [Fact]
    public void AMotionAdapterWithATextToVideoFolderIsOneClearError()
    {
        var folder = Unet3DFixtures.BuildFolder(_dir);
        var e = Assert.Throws<ArgumentException>(() => VideoPipeline.FromPretrained(folder, Path.Combine(_dir, "adapter")));
        Assert.Contains("TextToVideoSDPipeline folder", e.Message);
        Assert.Contains("motion adapter does not apply", e.Message);
    }
}
