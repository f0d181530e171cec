using System.Text.RegularExpressions;
using SelfCascade.Cascade;
using SelfCascade.Cascade.Upsamplers;
using SelfCascade.Imaging;
using SelfCascade.IO;
using SelfCascade.Models;
using SelfCascade.Models.Unet;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Support;
using SelfCascade.Tests.Upsamplers;
using SelfCascade.Training;
using SelfCascade.Video;
using SelfCascade.Video.Cascade;
using SelfCascade.Video.Pipelines;
using SelfCascade.Video.Unet3D;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Video.Unet3D;

/// <summary>
/// Feature upsamplers for ModelScope-style UNet3D models: the UNet3D's spatial half (<see cref="SpatialImageUNet"/>)
/// is the image UNet the sets are made for, trained on and run with (their low-res branch, per frame), and the sets
/// are injected at the image points inside the UNet3D. A zero set is the tuning-free cascade bit for bit; with the
/// temporal layers zero, every frame of a tuned video stage is the image cascade's tuned stage on that frame.
/// </summary>
public sealed partial class Unet3DUpsamplerTests : IDisposable
{
    private const string Prompt = "a blue square sliding to the right";
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-u3d-ups-").FullName;
    private readonly string _model;

    public Unet3DUpsamplerTests()
    {
        TorchSetup.Ensure();
        _model = Unet3DFixtures.BuildFolder(Directory.CreateDirectory(Path.Combine(_dir, "t2v")).FullName);
    }

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void TheDerivedSpatialHalfIsTheHandWrittenImageUNetAndLoadsOnlySpatialTensors()
    {
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var files = WeightLoader.ResolveWeightFiles(Unet3DFixtures.ModelScope("unet"));
        UNet2DConditionModel hand;
        using (ModelConstruction.On(CPU, ScalarType.Float32)) hand = new UNet2DConditionModel(UNet2DConditionConfig.FromJson(ConfigJson.Parse(Unet3DFixtures.SpatialImageConfigJson)));
        using (hand)
        {
            WeightLoader.Load(hand, files, strict: false);
            hand.eval();
            var config = UNet3DConditionConfig.Load(Unet3DFixtures.ModelScope("unet", "config.json"));
            var sources = files.Select(f => (ITensorSource)SafeTensorsFile.Open(f)).ToList();
            try
            {
                using var derived = SpatialImageUNet.FromWeights(config, sources);
                using var g = new Generator(4);
                var x = randn([2, 4, 16, 16], generator: g);
                var ctx = randn([2, 77, 32], generator: g);
                var t = tensor(new long[] { 300, 700 });
                Assert.True(Parity.Same(hand.Forward(x, t, ctx), derived.Forward(x, t, ctx)), "derived spatial half vs the hand-written image UNet");

                // The copy from a loaded UNet3D has the same weights.
                using var unet3d = UNet3DConditionModel.FromPretrained(Unet3DFixtures.ModelScope("unet"));
                using var copy = SpatialImageUNet.CopyOf(unet3d);
                Assert.True(SpatialImageUNet.IsCopyOf(copy, unet3d));
                Assert.False(SpatialImageUNet.IsCopyOf(derived, unet3d));
                var a = derived.state_dict();
                foreach (var (k, v) in copy.state_dict()) Assert.True(Parity.Same(v, a[k]), k);
            }
            finally { foreach (var s in sources) s.Dispose(); }
        }

        // The full-size ModelScope text-to-video-ms-1.7b UNet: 64-wide heads, 1024-wide text states.
        var ms = UNet3DConditionConfig.FromJson(ConfigJson.Parse("""
            { "_class_name": "UNet3DConditionModel", "attention_head_dim": 64, "block_out_channels": [320, 640, 1280, 1280],
              "cross_attention_dim": 1024, "layers_per_block": 2, "sample_size": 32 }
            """));
        var json = SpatialImageUNet.ImageConfigJson(ms);
        Assert.Equal("[5,10,20,20]", json["num_attention_heads"]!.ToJsonString());
        Assert.Equal("""["CrossAttnDownBlock2D","CrossAttnDownBlock2D","CrossAttnDownBlock2D","DownBlock2D"]""", json["down_block_types"]!.ToJsonString());
        Assert.Equal("""["UpBlock2D","CrossAttnUpBlock2D","CrossAttnUpBlock2D","CrossAttnUpBlock2D"]""", json["up_block_types"]!.ToJsonString());
        var image = SpatialImageUNet.Config(ms);
        Assert.True(image.UseLinearProjection);
        Assert.Equal(1024, image.CrossAttentionDim[0]);
    }

    [Fact]
    public void SpatialWeightsMissingOrForeignAreOneErrorAndTemporalOnesAreNotRead()
    {
        var config = UNet3DConditionConfig.Load(Unet3DFixtures.ModelScope("unet", "config.json"));
        var path = Path.Combine(_dir, "partial.safetensors");
        using (var unet3d = UNet3DConditionModel.FromPretrained(Unet3DFixtures.ModelScope("unet")))
        {
            var state = unet3d.state_dict().Where(kv => kv.Key != "conv_in.weight").ToDictionary();
            state["foreign.weight"] = zeros(3);
            SafeTensorsWriter.Save(path, state, new Dictionary<string, string> { ["format"] = "pt" });
        }
        using var file = SafeTensorsFile.Open(path);
        var e = Assert.Throws<WeightLoadException>(() => SpatialImageUNet.FromWeights(config, [file]));
        Assert.Contains("missing: conv_in.weight", e.Message);
        Assert.Contains("unexpected: foreign.weight", e.Message);
        Assert.DoesNotContain("temp_", e.Message);
        Assert.DoesNotContain("transformer_in", e.Message);
    }

    private VideoRequest Request(FeatureUpsamplerInjector? ups, int videos = 1, int frames = 2) => new()
    {
        Prompt = Prompt, NegativePrompt = "", Frames = frames, NumVideos = videos, Width = 64, Height = 64, Steps = 5, Guidance = 6.0,
        Seed = 3, BaseSize = new PixelSize(32, 32), PivotStrength = 0.6, Method = GenerationMethod.SelfCascade, Upsamplers = ups,
    };

    [Fact]
    public void AZeroSetIsTheTuningFreeUnet3DCascadeBitForBitAndAPerturbedOneIsNot()
    {
        using var pipe = VideoPipeline.FromPretrained(_model);
        using var plain = VideoCascadeGenerator.Generate(pipe, Request(null));
        using var set = FeatureUpsamplerSet.Create(UpsamplerVariant.Lite, pipe.UpsamplerUNet);
        using var injector = new FeatureUpsamplerInjector(set);
        VideoCascadeGenerator.Validate(pipe, Request(injector));
        using var tuned = VideoCascadeGenerator.Generate(pipe, Request(injector));
        Assert.Equal(2, tuned.Stages.Count);
        Assert.True(Parity.Same(plain.Latents, tuned.Latents), $"max diff {Parity.MaxAbsDiff(plain.Latents, tuned.Latents):G4}");

        UpsamplerTestSupport.Perturb(set, 7);
        using var changed = VideoCascadeGenerator.Generate(pipe, Request(injector));
        Assert.True(Parity.MaxAbsDiff(plain.Latents, changed.Latents) > 1e-4, "a non-zero set must change the video");
        Assert.False(changed.Latents.isnan().any().item<bool>());

        // The spatial half is made once and kept by the pipeline.
        Assert.Same(pipe.UpsamplerUNet, pipe.UpsamplerUNet);
        Assert.True(SpatialImageUNet.IsCopyOf(pipe.UpsamplerUNet, pipe.TextToVideo!.Unet));
    }

    [GeneratedRegex(@"(^|\.)(temp_convs\.\d+\.conv4\.3|temp_attentions\.\d+\.proj_out|transformer_in\.proj_out)\.(weight|bias)$")]
    private static partial Regex TemporalOutput();

    /// <summary>
    /// Temporal layers zeroed (frames independent): stage 1 of the tuned video cascade on a random (2 videos, 2 frames)
    /// pivot equals, frame by frame, the image cascade's tuned stage 1 through the spatial-half image pipeline on the
    /// 4 frames as a batch of images, with the same perturbed set and the same noise (randn((B, F, C, h, w)) is the
    /// image stage's randn((B*F, C, h, w))). Injection at other points, a wrong low-res branch or frame order would
    /// each change some frame.
    /// </summary>
    [Fact]
    public void WithTemporalLayersZeroEveryFrameIsTheSpatialHalfsTunedImageStage()
    {
        using var pipe = VideoPipeline.FromPretrained(_model);
        int zeroed = 0;
        using (no_grad())
            foreach (var (name, p) in pipe.TextToVideo!.Unet.named_parameters())
                if (TemporalOutput().IsMatch(name)) { p.zero_(); zeroed++; }
        Assert.Equal(2 * 13, zeroed);
        using var image = TextToVideoSdPipeline.SpatialImagePipeline(_model);

        using var set = FeatureUpsamplerSet.Create(UpsamplerVariant.Lite, pipe.UpsamplerUNet);
        UpsamplerTestSupport.Perturb(set, 9, scale: 0.2);
        using var injector = new FeatureUpsamplerInjector(set);
        var request = Request(injector, videos: 2, frames: 2);
        var stage = VideoCascadeGenerator.Plan(pipe, 64, 64, request).Stages[1];
        using var g = new Generator(21);
        using var previous = randn([2, 4, 2, 16, 16], generator: g);
        using var emb = pipe.EncodePrompt(Prompt, "", true);

        using var video = VideoCascadeGenerator.RunStage(pipe, request, previous, stage, emb, 11, null, default, 2);
        using var frames = VideoFrames.Fold(previous).contiguous();
        var imageRequest = new CascadeRequest
        {
            Request = new GenerationRequest(Prompt) { NegativePrompt = "", Width = 64, Height = 64, Steps = 5, Guidance = 6.0, NumImages = 4 },
            Method = GenerationMethod.SelfCascade, PivotStrength = 0.6, Injector = injector,
        };
        using var images = CascadeGenerator.RunStage(image, imageRequest, frames, new PixelSize(32, 32), stage, emb, 11, null, default, 2);
        using var asVideo = VideoFrames.Unfold(images, 2);
        Assert.Equal(new long[] { 2, 4, 2, 32, 32 }, video.shape);
        for (int b = 0; b < 2; b++)
            for (int f = 0; f < 2; f++)
                Parity.AssertClose(video.select(0, b).select(1, f), asVideo.select(0, b).select(1, f), $"video {b} frame {f}");

        using var plain = VideoCascadeGenerator.RunStage(pipe, Request(null, videos: 2, frames: 2), previous, stage, emb, 11, null, default, 2);
        Assert.True(Parity.MaxAbsDiff(plain, video) > 1e-2, $"the upsamplers changed the stage by only {Parity.MaxAbsDiff(plain, video):G4}");
    }

    /// <summary>
    /// train-upsamplers on a TextToVideoSD folder trains on the spatial half (the UNet3D's spatial weights, read from
    /// its files), and the set it writes runs in the video cascade.
    /// </summary>
    [Fact]
    public void TrainingOnATextToVideoFolderUsesTheSpatialHalfAndItsSetRunsInTheCascade()
    {
        var data = Directory.CreateDirectory(Path.Combine(_dir, "data")).FullName;
        for (int i = 0; i < 4; i++)
        {
            var img = new RgbImage(32, 32);
            for (int p = 0; p < img.Pixels.Length; p++) img.Pixels[p] = (byte)((p * (i + 3) + (p / 96) * 17) % 256);
            img.SavePng(Path.Combine(data, $"img_{i}.png"));
            File.WriteAllText(Path.Combine(data, $"img_{i}.txt"), $"pattern {i}");
        }
        var up = new UpsamplerTrainingOptions { ModelDir = _model, Variant = UpsamplerVariant.Lite, Size = 32, MaxTimestep = 700 };
        using (var task = new UpsamplerTrainingTask(up, seed: 1))
        using (var unet3d = UNet3DConditionModel.FromPretrained(Unet3DFixtures.ModelScope("unet")))
        using (var copy = SpatialImageUNet.CopyOf(unet3d))
        {
            Assert.Equal(32, task.HighResSize);
            Assert.Equal(16, task.LowResSize);
            var trained = task.Pipeline.Unet.state_dict();
            foreach (var (k, v) in copy.state_dict()) Assert.True(Parity.Same(v, trained[k]), k);
        }

        var run = Path.Combine(_dir, "run");
        var result = UpsamplerTraining.Run(data, new TrainingOptions
        {
            OutputDir = run, Steps = 6, BatchSize = 2, LearningRate = 1e-2, Seed = 1, CheckpointEvery = 100, CaptionDropout = 0,
        }, up);
        Assert.Equal(6, result.Losses.Count);
        Assert.All(result.Losses, r => Assert.True(double.IsFinite(r.Loss)));

        using var pipe = VideoPipeline.FromPretrained(_model);
        using var injector = FeatureUpsamplerInjector.FromCheckpoints([run], pipe.UpsamplerUNet);
        using var plain = VideoCascadeGenerator.Generate(pipe, Request(null));
        using var tuned = VideoCascadeGenerator.Generate(pipe, Request(injector));
        Assert.True(Parity.MaxAbsDiff(plain.Latents, tuned.Latents) > 1e-5, "six steps at lr 1e-2 move the set off zero");
        Assert.False(tuned.Latents.isnan().any().item<bool>());
    }
}
