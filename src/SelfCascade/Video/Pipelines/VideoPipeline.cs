using SelfCascade.Cascade;
using SelfCascade.IO;
using SelfCascade.Imaging;
using SelfCascade.Models.Unet;
using SelfCascade.Offload;
using SelfCascade.Pipelines;
using SelfCascade.Schedulers;
using SelfCascade.Video.Models;
using SelfCascade.Video.Unet3D;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Video.Pipelines;

/// <summary>
/// Text-to-video, step for step as diffusers' AnimateDiffPipeline / TextToVideoSDPipeline: noise
/// randn((B, C, F, h, w)) on a CPU generator, classifier-free guidance with the negative half first, the scheduler's
/// scale/step on the video tensor, and every frame decoded by the VAE on latents / scaling_factor. The text encoder,
/// VAE and scheduler are reused, not copied: an image pipeline's (<see cref="Image"/>, AnimateDiff) or a
/// <see cref="TextToVideoSdPipeline"/>'s (<see cref="TextToVideo"/>, ModelScope-style UNet3D); the denoiser is any
/// <see cref="IVideoUNet"/>. The pieces (<see cref="InitialNoise"/>, <see cref="Denoise"/>, <see cref="DecodeVideo"/>)
/// are public for the video cascade.
/// </summary>
public sealed class VideoPipeline : IDisposable
{
    private readonly StableDiffusionPipeline? _image;

    /// <summary>
    /// AnimateDiff: the image pipeline (text encoders, VAE, scheduler and the image UNet the motion modules run in).
    /// A ModelScope-style pipeline has none (<see cref="HasImagePipeline"/>): reading it throws NotSupportedException.
    /// </summary>
    public StableDiffusionPipeline Image => _image ?? throw new NotSupportedException(
        "this is a ModelScope-style UNet3D (TextToVideoSD) video model: it has no image UNet (only AnimateDiff models do)");

    public bool HasImagePipeline => _image is not null;

    /// <summary>The ModelScope-style pipeline (UNet3DConditionModel) whose text encoder, VAE and scheduler are used; null for AnimateDiff.</summary>
    public TextToVideoSdPipeline? TextToVideo { get; }

    public IVideoUNet Unet { get; }
    private readonly IDisposable[] _owned;

    /// <param name="owned">Disposed with the pipeline (the image pipeline is always owned).</param>
    public VideoPipeline(StableDiffusionPipeline image, IVideoUNet unet, params IDisposable[] owned)
    {
        _image = image;
        Unet = unet;
        _owned = [.. owned, image];
    }

    /// <summary>A ModelScope-style text-to-video pipeline (owned) as a video pipeline: its UNet3D, text encoder, VAE and scheduler.</summary>
    public VideoPipeline(TextToVideoSdPipeline textToVideo)
    {
        TextToVideo = textToVideo;
        Unet = textToVideo.Unet;
        _owned = [textToVideo];
    }

    /// <summary>
    /// Any supported text-to-video model: a diffusers TextToVideoSDPipeline folder (<see cref="IsTextToVideoSdFolder"/>;
    /// a motion adapter is then an error), else AnimateDiff (<see cref="FromAnimateDiff"/>).
    /// </summary>
    public static VideoPipeline FromPretrained(string model, string? motionAdapter = null, PipelineOptions? options = null)
    {
        if (!IsTextToVideoSdFolder(model)) return FromAnimateDiff(model, motionAdapter, options);
        if (motionAdapter != null)
            throw new ArgumentException($"{model} is a {TextToVideoSdPipeline.PipelineClass} folder (UNet3D with its own temporal layers): a motion adapter does not apply to it");
        return FromTextToVideoSd(model, options);
    }

    /// <summary>A diffusers TextToVideoSDPipeline folder (UNet3DConditionModel): <see cref="TextToVideoSdPipeline.FromPretrained"/>.</summary>
    public static VideoPipeline FromTextToVideoSd(string folder, PipelineOptions? options = null) =>
        new(TextToVideoSdPipeline.FromPretrained(folder, options));

    /// <summary>
    /// True for a folder whose model_index.json names the TextToVideoSDPipeline class or whose unet/config.json names
    /// UNet3DConditionModel (configs only, no weights read). Files, other folders and unreadable configs: false.
    /// </summary>
    public static bool IsTextToVideoSdFolder(string path)
    {
        if (!Directory.Exists(path)) return false;
        var index = Path.Combine(path, "model_index.json");
        if (!File.Exists(index)) return false;
        try
        {
            if (ConfigJson.Load(index).OptionalString("_class_name") == TextToVideoSdPipeline.PipelineClass) return true;
            var unetConfig = Path.Combine(path, "unet", "config.json");
            return File.Exists(unetConfig) && ConfigJson.Load(unetConfig).OptionalString("_class_name") == UNet3DConditionConfig.ClassName;
        }
        catch (Exception e) when (e is ConfigException or IOException or System.Text.Json.JsonException)
        {
            return false; // the loader that runs next names what is wrong with the folder
        }
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

    private UNet2DConditionModel? _spatialUnet;

    /// <summary>
    /// The image UNet the feature upsamplers run in (the tuned cascade's low-res branch and the config a set must fit):
    /// AnimateDiff's image UNet, or for a ModelScope-style UNet3D its <see cref="SpatialImageUNet"/>, copied from the
    /// UNet3D on first use and owned by this pipeline (the spatial weights' memory once more). Other video UNets:
    /// NotSupportedException.
    /// </summary>
    public UNet2DConditionModel UpsamplerUNet => Unet switch
    {
        UNetMotionModel m => m.Unet,
        UNet3DConditionModel u when TextToVideo is not null && ReferenceEquals(u, TextToVideo.Unet) => _spatialUnet ??= SpatialImageUNet.CopyOf(u),
        _ => throw UpsamplersNotSupported(),
    };

    /// <summary>The config of <see cref="UpsamplerUNet"/>, without building anything.</summary>
    public UNet2DConditionConfig UpsamplerUNetConfig => Unet switch
    {
        UNetMotionModel m => m.Unet.Config,
        UNet3DConditionModel u when TextToVideo is not null && ReferenceEquals(u, TextToVideo.Unet) => SpatialImageUNet.Config(u.Config),
        _ => throw UpsamplersNotSupported(),
    };

    private NotSupportedException UpsamplersNotSupported() => new(
        $"feature upsamplers in the video cascade are supported for AnimateDiff and ModelScope-style UNet3D models only (this model's video UNet is {Unet.GetType().Name})");

    /// <summary>"AnimateDiff" or "TextToVideoSD" (metadata, messages).</summary>
    public string Kind => _image is null ? "TextToVideoSD" : "AnimateDiff";
    public Device Device => _image?.Device ?? TextToVideo!.Device;
    public ScalarType DType => _image?.DType ?? TextToVideo!.DType;
    public int VaeScaleFactor => _image?.VaeScaleFactor ?? TextToVideo!.VaeScaleFactor;
    public int NativeSize => _image?.NativeSize ?? TextToVideo!.NativeSize;
    public NoiseScheduler Scheduler => _image?.Scheduler ?? TextToVideo!.Scheduler;
    public double DefaultGuidance => _image?.DefaultGuidance ?? TextToVideo!.DefaultGuidance;
    public int DefaultSteps => _image?.DefaultSteps ?? TextToVideo!.DefaultSteps;
    public double DefaultPivotStrength => _image?.DefaultPivotStrength ?? TextToVideo!.Defaults.PivotStrength ?? ModelDefaults.PaperPivotStrength;

    /// <summary>What the scale planner needs (native size, VAE factor, UNet depth, defaults).</summary>
    public ModelGeometry Geometry => _image is not null ? ModelGeometry.Of(_image) : TextToVideoGeometry(TextToVideo!);

    private static ModelGeometry TextToVideoGeometry(TextToVideoSdPipeline t) =>
        new(t.NativeSize, t.VaeScaleFactor, t.Unet.Config.NumBlocks, ModelFamily.StableDiffusion2, t.DType == ScalarType.Float32 ? 4 : 2)
        {
            Defaults = t.Defaults with { Guidance = t.DefaultGuidance },
            VaeTileSize = t.Vae.Config.SampleSize ?? TiledVaeOptions.DefaultTileSampleSize,
        };

    /// <summary>The text encoder's states for the prompt and (with guidance) the negative prompt, "" when null.</summary>
    public PromptEmbeddings EncodePrompt(string prompt, string? negativePrompt, bool classifierFreeGuidance) =>
        _image?.EncodePrompt(prompt, negativePrompt, classifierFreeGuidance) ?? TextToVideo!.EncodePrompt(prompt, negativePrompt, classifierFreeGuidance);

    /// <summary>Both sides positive multiples of the VAE factor; one clear ArgumentException otherwise.</summary>
    public void ValidateSize(int width, int height)
    {
        if (_image is not null) { _image.ValidateSize(width, height); return; }
        int f = VaeScaleFactor;
        if (width <= 0 || height <= 0) throw new ArgumentException($"size {width}x{height} must be positive");
        if (width % f != 0 || height % f != 0)
            throw new ArgumentException($"size {width}x{height} must be a multiple of {f} (the VAE factor) on both sides");
    }

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
        var scheduler = Scheduler;
        // diffusers' TextToVideoSDPipeline steps the scheduler on the frames folded into the batch (the draw order of
        // a stochastic scheduler's noise depends on it); AnimateDiffPipeline steps the video tensor as it is.
        bool stepFolded = TextToVideo is not null;
        long frames = latents.shape[2];
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
                var next = stepFolded
                    ? VideoFrames.Unfold(scheduler.Step(VideoFrames.Fold(noise), t, VideoFrames.Fold(x), generator), frames).contiguous()
                    : scheduler.Step(noise, t, x, generator);
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
        if (TextToVideo is not null) return TextToVideo.DecodeVideo(latents, framesPerDecode, tiling, tileOptions, cancellationToken);
        using var scope = NewDisposeScope();
        long frames = latents.shape[2];
        var folded = VideoFrames.Fold(latents);
        var parts = new List<Tensor>();
        for (long start = 0; start < folded.shape[0]; start += framesPerDecode)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var chunk = NewDisposeScope();
            long n = Math.Min(framesPerDecode, folded.shape[0] - start);
            var pixels = _image!.DecodeLatents(folded.narrow(0, start, n), tiling, tileOptions).cpu();
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
        _spatialUnet?.Dispose();
        _spatialUnet = null;
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
