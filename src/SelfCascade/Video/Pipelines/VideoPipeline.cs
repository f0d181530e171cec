using SelfCascade.Cascade;
using SelfCascade.Imaging;
using SelfCascade.Offload;
using SelfCascade.Pipelines;
using SelfCascade.Video.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Video.Pipelines;

/// <summary>
/// Text-to-video, step for step as diffusers' AnimateDiffPipeline / TextToVideoSDPipeline: noise
/// randn((B, C, F, h, w)) on a CPU generator, classifier-free guidance with the negative half first, the scheduler's
/// scale/step on the whole video tensor, and every frame decoded by the VAE on latents / scaling_factor. The text
/// encoder, VAE and scheduler are an image pipeline's (<see cref="Image"/>, reused, not copied); the denoiser is any
/// <see cref="IVideoUNet"/>. The pieces (<see cref="InitialNoise"/>, <see cref="Denoise"/>, <see cref="DecodeVideo"/>)
/// are public for the video cascade.
/// </summary>
public sealed class VideoPipeline : IDisposable
{
    /// <summary>Text encoders, VAE, scheduler (and, for AnimateDiff, the image UNet the motion modules run in).</summary>
    public StableDiffusionPipeline Image { get; }
    public IVideoUNet Unet { get; }
    private readonly IDisposable[] _owned;

    /// <param name="owned">Disposed with the pipeline (the image pipeline is always owned).</param>
    public VideoPipeline(StableDiffusionPipeline image, IVideoUNet unet, params IDisposable[] owned)
    {
        Image = image;
        Unet = unet;
        _owned = [.. owned, image];
    }

    /// <summary>
    /// AnimateDiff: an SD 1.x/2.x model (folder, single file or hub snapshot, as for images) plus a diffusers
    /// MotionAdapter folder: <paramref name="motionAdapter"/>, or the model folder's own `motion_adapter` component
    /// (an AnimateDiffPipeline folder). Bad adapters give one <see cref="MotionAdapterLayoutException"/>.
    /// </summary>
    public static VideoPipeline FromAnimateDiff(string model, string? motionAdapter = null, PipelineOptions? options = null)
    {
        options ??= new PipelineOptions();
        if (options.Offload != OffloadMode.None)
            throw new NotSupportedException("model offload is not supported for video generation yet");
        var image = StableDiffusionPipeline.FromPretrained(model, options);
        MotionAdapter? adapter = null;
        try
        {
            string dir = motionAdapter ?? (image.Folder?.Has("motion_adapter") == true
                ? image.Folder.ComponentDir("motion_adapter")
                : throw new MotionAdapterLayoutException($"{model}: no motion_adapter component in model_index.json; give a motion adapter folder"));
            var weights = image.Unet.DType;
            adapter = MotionAdapter.FromPretrained(dir, image.Device, weights, options.Variant, image.Unet.Config.NormNumGroups);
            var unet = new UNetMotionModel(image.Unet, adapter);
            return new VideoPipeline(image, unet, adapter);
        }
        catch
        {
            adapter?.Dispose();
            image.Dispose();
            throw;
        }
    }

    public Device Device => Image.Device;
    public ScalarType DType => Image.DType;
    public int VaeScaleFactor => Image.VaeScaleFactor;
    public int NativeSize => Image.NativeSize;

    /// <summary>The initial noise randn((videos, C, frames, H/f, W/f)) on the CPU generator in fp32, then moved.</summary>
    public Tensor InitialNoise(Generator generator, int videos, int frames, int width, int height)
    {
        using var scope = NewDisposeScope();
        var shape = new long[] { videos, Unet.InChannels, frames, height / VaeScaleFactor, width / VaeScaleFactor };
        return randn(shape, dtype: ScalarType.Float32, generator: generator).to(Device).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The denoising loop over <paramref name="timesteps"/> from <paramref name="latents"/> (B, C, F, h, w) fp32.
    /// One dispose scope per step; cancellation between steps. <paramref name="videosPerCall"/> splits every UNet
    /// call over the (CFG-doubled) batch of videos (<see cref="VideoUNetChunking"/>); null = one call.
    /// <paramref name="optionsForStep"/>, when given, supplies each step's UNet options instead of <paramref name="unetOptions"/>
    /// (the tuned cascade's upsamplers, <see cref="Upsamplers.VideoUpsamplerStage.OptionsForStep"/>).
    /// </summary>
    public Tensor Denoise(Tensor latents, IReadOnlyList<double> timesteps, PromptEmbeddings embeddings, double guidance,
        Generator? generator, VideoUNetForwardOptions? unetOptions = null, int? videosPerCall = null,
        IProgress<GenerationProgress>? progress = null, CancellationToken cancellationToken = default, int stage = 0, int stageCount = 1,
        Func<double, VideoUNetForwardOptions?>? optionsForStep = null)
    {
        VideoFrames.Check(latents);
        using var mode = torch.inference_mode();
        var scheduler = Image.Scheduler;
        bool cfg = embeddings.HasGuidance;
        int videos = (int)latents.shape[0];
        using var states = embeddings.ForUnet(videos);
        using var guidanceScale = tensor(guidance, ScalarType.Float32, device: Device);
        using var timestepTensors = new TensorList(timesteps.Select(t => scheduler.TimestepTensor(t, Device)));
        var x = latents.alias();
        for (int i = 0; i < timesteps.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            double t = timesteps[i];
            using (var scope = NewDisposeScope())
            {
                var input = cfg ? cat([x, x], 0) : x.alias();
                var scaled = scheduler.ScaleModelInput(input, t).to(Unet.DType);
                var options = optionsForStep is null ? unetOptions : optionsForStep(t);
                var noise = VideoUNetChunking.Forward(Unet, scaled, timestepTensors[i], states, options, videosPerCall).to(ScalarType.Float32);
                if (cfg)
                {
                    var halves = noise.chunk(2, 0);
                    noise = halves[0] + guidanceScale * (halves[1] - halves[0]);
                }
                var next = scheduler.Step(noise, t, x, generator);
                x.Dispose();
                x = next.MoveToOuterDisposeScope();
            }
            progress?.Report(new GenerationProgress("denoise", i + 1, timesteps.Count, stage, stageCount));
        }
        return x;
    }

    /// <summary>
    /// Decodes (B, C, F, h, w) scaled latents to (B, 3, F, H, W) fp32 pixels in [-1, 1] on the CPU, at most
    /// <paramref name="framesPerDecode"/> frames per VAE call (each frame is decoded on its own, so the chunking only
    /// bounds memory), each call tiled when <paramref name="tiling"/> says so (<see cref="StableDiffusionPipeline.DecodeLatents"/>).
    /// </summary>
    public Tensor DecodeVideo(Tensor latents, int framesPerDecode = 8, VaeTiling tiling = VaeTiling.Auto, TiledVaeOptions? tileOptions = null,
        CancellationToken cancellationToken = default)
    {
        if (framesPerDecode < 1) throw new ArgumentException($"frames per decode must be at least 1 (got {framesPerDecode})");
        using var scope = NewDisposeScope();
        long frames = latents.shape[2];
        var folded = VideoFrames.Fold(latents);
        var parts = new List<Tensor>();
        for (long start = 0; start < folded.shape[0]; start += framesPerDecode)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var chunk = NewDisposeScope();
            long n = Math.Min(framesPerDecode, folded.shape[0] - start);
            var pixels = Image.DecodeLatents(folded.narrow(0, start, n), tiling, tileOptions).cpu();
            parts.Add(pixels.MoveToOuterDisposeScope());
        }
        return VideoFrames.Unfold(cat(parts, 0), frames).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>(B, 3, F, H, W) pixels in [-1, 1] -> per video, its frames as 8-bit images (diffusers' rounding).</summary>
    public static List<RgbImage[]> ToFrames(Tensor video)
    {
        VideoFrames.Check(video);
        var result = new List<RgbImage[]>();
        for (long b = 0; b < video.shape[0]; b++)
        {
            var frames = new RgbImage[video.shape[2]];
            for (long f = 0; f < frames.Length; f++)
            {
                using var scope = NewDisposeScope();
                frames[f] = RgbImage.FromDecoderOutput(video.select(0, b).select(1, f));
            }
            result.Add(frames);
        }
        return result;
    }

    public void Dispose()
    {
        foreach (var o in _owned) o.Dispose();
    }
}

/// <summary>Tensors made before a loop and freed after it.</summary>
internal sealed class TensorList(IEnumerable<Tensor> tensors) : IDisposable
{
    private readonly List<Tensor> _items = tensors.ToList();
    public Tensor this[int i] => _items[i];
    public void Dispose() { foreach (var t in _items) t.Dispose(); }
}
