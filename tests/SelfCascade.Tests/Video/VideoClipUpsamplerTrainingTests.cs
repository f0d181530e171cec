using SelfCascade.Cascade;
using SelfCascade.Cascade.Upsamplers;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Cli;
using SelfCascade.Tests.Support;
using SelfCascade.Tests.Video.Cli;
using SelfCascade.Tests.Video.Output;
using SelfCascade.Training;
using SelfCascade.Video.Cascade;
using SelfCascade.Video.Output;
using SelfCascade.Video.Pipelines;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Video;

/// <summary>
/// train-upsamplers on video clips (issue 11 item 3): frame folders with a caption.txt and animated GIFs, every frame
/// one training image; the trained set lowers the loss and generate-video runs it per frame.
/// </summary>
public sealed class VideoClipUpsamplerTrainingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-vclip-").FullName;
    private readonly string _clips;

    public VideoClipUpsamplerTrainingTests()
    {
        TorchSetup.Ensure();
        _clips = Path.Combine(_dir, "clips");
        MakeClips(_clips);
    }

    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>Frame k of clip c: a square of the clip's colour moving right on white, 32 px.</summary>
    private static RgbImage Frame(int clip, int k)
    {
        var colour = clip switch { 0 => (255, 0, 0), 1 => (0, 0, 255), _ => (0, 160, 0) };
        var img = new RgbImage(32, 32);
        Array.Fill(img.Pixels, (byte)255);
        for (int y = 10; y < 22; y++)
            for (int x = 4 + 4 * k; x < 16 + 4 * k; x++)
            {
                int i = (y * 32 + x) * 3;
                (img.Pixels[i], img.Pixels[i + 1], img.Pixels[i + 2]) = ((byte)colour.Item1, (byte)colour.Item2, (byte)colour.Item3);
            }
        return img;
    }

    /// <summary>Two frame folders as motion-data writes them, one animated GIF with its caption, one corrupt GIF.</summary>
    private static void MakeClips(string dir)
    {
        foreach (var (clip, caption) in new[] { (0, "red square, panning right"), (1, "blue square, panning right") })
        {
            var folder = Path.Combine(dir, $"clip_{clip:D5}");
            Directory.CreateDirectory(folder);
            for (int k = 0; k < 4; k++) Frame(clip, k).SavePng(Path.Combine(folder, $"frame_{k:D2}.png"));
            File.WriteAllText(Path.Combine(folder, "caption.txt"), caption);
        }
        var gifs = Directory.CreateDirectory(Path.Combine(dir, "gifs")).FullName;
        AnimatedGif.Save(Path.Combine(gifs, "green.gif"), [.. Enumerable.Range(0, 4).Select(k => Frame(2, k))], fps: 8);
        File.WriteAllText(Path.Combine(gifs, "green.txt"), "green square, panning right");
        File.WriteAllBytes(Path.Combine(gifs, "broken.gif"), "GIF89a\u0001\u0002"u8.ToArray());
    }

    [Fact]
    public void ClipFoldersAndGifsGiveEveryFrameWithItsClipsCaption()
    {
        var data = new ImageFolderDataset(_clips, 32, CropMode.Center, videoClips: true);
        Assert.Equal(12, data.Count);
        Assert.Single(data.Skipped);
        Assert.EndsWith("broken.gif", data.Skipped[0].Path);
        Assert.Contains("12 images (4 of them frames from 1 video file(s))", data.Summary());
        var captions = Enumerable.Range(0, data.Count).Select(data.CaptionAt).ToList();
        Assert.Equal(4, captions.Count(c => c == "red square, panning right"));
        Assert.Equal(4, captions.Count(c => c == "blue square, panning right"));
        Assert.Equal(4, captions.Count(c => c == "green square, panning right"));
        // Every frame, in order, the pixels drawn (flat colours survive the GIF palette exactly).
        for (int i = 0; i < data.Count; i++)
        {
            int clip = captions[i].StartsWith("red") ? 0 : captions[i].StartsWith("blue") ? 1 : 2;
            int k = i % 4;
            var example = data.Get(i, 0, i);
            using var expected = Frame(clip, k).ToTensor();
            Parity.AssertEqual(example.Image.unsqueeze(0), expected, $"item {i} ({data.PathAt(i)}) = clip {clip} frame {k}");
            example.Image.Dispose();
        }
        // Without video clips the folder is read as before: the PNG frames only, without the folder caption.
        var images = new ImageFolderDataset(_clips, 32, CropMode.Center);
        Assert.Equal(8, images.Count);
        Assert.All(Enumerable.Range(0, 8), i => Assert.Equal("", images.CaptionAt(i)));
    }

    private static TrainingBatch FixedBatch(ImageFolderDataset data, params int[] items)
    {
        var examples = items.Select(i => data.Get(i, 0, i)).ToList();
        var images = stack(examples.Select(e => e.Image).ToArray());
        foreach (var e in examples) e.Image.Dispose();
        return new TrainingBatch(images, examples.Select(e => e.Caption).ToList(), items.Select(i => (long)i).ToList());
    }

    private static double LossOn(UpsamplerTrainingTask task, TrainingBatch batch)
    {
        using var g = new Generator(17);
        using var _ = no_grad();
        using var loss = task.Loss(batch, g);
        return loss.item<float>();
    }

    [Fact]
    [Trait("Category", "Slow")]
    public void TrainingOnClipsLowersTheLossAndGenerateVideoRunsTheSet()
    {
        var model = VideoFixtures.BuildAnimateDiff(Path.Combine(_dir, "model"));
        var up = new UpsamplerTrainingOptions { ModelDir = model, Variant = UpsamplerVariant.Full, Size = 32, MaxTimestep = 700 };
        var run = Path.Combine(_dir, "run");
        var lines = new List<string>();
        var result = UpsamplerTraining.Run(_clips, new TrainingOptions
        {
            OutputDir = run, Steps = 120, BatchSize = 4, LearningRate = 3e-3, Seed = 3, CheckpointEvery = 100, CaptionDropout = 0,
        }, up, log: lines.Add);
        Assert.Contains(lines, l => l.Contains("12 images (4 of them frames from 1 video file(s))"));
        Assert.All(result.Losses, r => Assert.True(double.IsFinite(r.Loss)));

        // The same fixed batch (two frames of each clip, fixed noise and timesteps) before and after training.
        using var task = new UpsamplerTrainingTask(up, seed: 3);
        var data = new ImageFolderDataset(_clips, 32, CropMode.Center, videoClips: true);
        using var batch = FixedBatch(data, 0, 3, 5, 6, 9, 11);
        double before = LossOn(task, batch);
        using (var trained = FeatureUpsamplerSet.Load(run, task.Pipeline.Unet))
        using (no_grad())
            foreach (var (name, p) in task.Upsamplers.named_parameters()) p.copy_(trained.state_dict()[name]);
        double after = LossOn(task, batch);
        Assert.True(after < 0.95 * before, $"training on the clips did not lower the loss: {before:G5} -> {after:G5}");

        // generate-video takes the checkpoint (the run folder) and writes the library's tuned video.
        var outFile = Path.Combine(_dir, "tuned.webp");
        var (code, stdout, err) = CliRunner.Run("generate-video", "--model", model, "--prompt", "red square, panning right", "--frames", "3",
            "--size", "64x64", "--base-size", "32x32", "--steps", "5", "--pivot-strength", "0.6", "--guidance", "6", "--seed", "4",
            "--upsamplers", run, "--out", outFile);
        Assert.True(code == 0, err);
        Assert.Equal(outFile, stdout.Trim());
        var (frames, _) = AnimatedImageDecoder.Decode(outFile);
        using var pipe = VideoPipeline.FromAnimateDiff(model);
        using var injector = FeatureUpsamplerInjector.FromCheckpoints([run], pipe.Image.Unet);
        VideoRequest Request(FeatureUpsamplerInjector? ups) => new()
        {
            Prompt = "red square, panning right", Frames = 3, Width = 64, Height = 64, BaseSize = new PixelSize(32, 32), Steps = 5,
            PivotStrength = 0.6, Guidance = 6, Seed = 4, Upsamplers = ups,
        };
        using var tuned = VideoCascadeGenerator.Generate(pipe, Request(injector));
        using var plain = VideoCascadeGenerator.Generate(pipe, Request(null));
        for (int f = 0; f < 3; f++) Assert.Equal(tuned.Videos[0][f].Pixels, frames[f].Pixels);
        Assert.True(Parity.MaxAbsDiff(tuned.Latents, plain.Latents) > 1e-4, "the trained set must change the video");
        Assert.Equal("run", AnimatedWebP.ReadMetadata(File.ReadAllBytes(outFile))["upsamplers"]);
    }

    [Fact]
    public void Mp4ClipsAreReadThroughFfmpegAndTrainUpsamplersTakesThem()
    {
        Assert.True(FfmpegMp4WriterTestsSupport.FfmpegOnPath, "ffmpeg is not on PATH: install it (apt-get install -y --no-install-recommends ffmpeg)");
        var mp4 = Path.Combine(_clips, "mp4", "green.mp4");
        var original = Enumerable.Range(0, 4).Select(k => Frame(2, k)).ToList();
        SelfCascade.Cli.Video.FfmpegMp4Writer.Write(SelfCascade.Cli.Video.FfmpegMp4Writer.Find()!, mp4, original, fps: 8);
        File.WriteAllText(Path.ChangeExtension(mp4, ".txt"), "green square, panning right");
        File.WriteAllBytes(Path.Combine(_clips, "mp4", "broken.mp4"), [0, 0, 0, 0x18, 0x66, 0x74, 0x79, 0x70]);

        // Every frame back at its size, close to the original (H.264 at CRF 15 is lossy, yuv420p halves the chroma).
        var frames = SelfCascade.Cli.Video.FfmpegClipReader.ReadFrames(mp4);
        Assert.Equal(4, frames.Count);
        for (int k = 0; k < 4; k++)
        {
            Assert.Equal((32, 32), (frames[k].Width, frames[k].Height));
            double mean = frames[k].Pixels.Zip(original[k].Pixels).Average(p => Math.Abs(p.First - p.Second));
            Assert.True(mean < 6, $"frame {k}: mean |decoded - original| = {mean:F2} levels");
        }
        var e = Assert.Throws<InvalidDataException>(() => SelfCascade.Cli.Video.FfmpegClipReader.ReadFrames(Path.Combine(_clips, "mp4", "broken.mp4")));
        Assert.Contains("ffprobe failed", e.Message);

        var model = VideoFixtures.BuildAnimateDiff(Path.Combine(_dir, "model"));
        var (code, stdout, err) = CliRunner.Run("train-upsamplers", "--model", model, "--data", _clips, "--out", Path.Combine(_dir, "mp4run"),
            "--size", "32", "--steps", "1", "--batch", "2");
        Assert.True(code == 0, err);
        Assert.Contains("16 images (8 of them frames from 2 video file(s))", err);
        Assert.Contains("(2 skipped: 2 unreadable, 0 too small)", err);
        Assert.True(File.Exists(Path.Combine(_dir, "mp4run", "upsamplers", "upsamplers.safetensors")));
    }
}
