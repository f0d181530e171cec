using SelfCascade.Cascade;
using SelfCascade.Checkpoints;
using SelfCascade.IO;
using SelfCascade.Models.Clip;
using SelfCascade.Models.Vae;
using SelfCascade.Pipelines;
using SelfCascade.Runtime;
using SelfCascade.Schedulers;
using SelfCascade.Video.Unet3D;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Video.Pipelines;

/// <summary>What to generate with <see cref="TextToVideoSdPipeline.Generate"/> (diffusers' TextToVideoSDPipeline arguments).</summary>
public sealed record TextToVideoSdRequest(string Prompt)
{
    public string? NegativePrompt { get; init; }
    public int Frames { get; init; } = 16;
    /// <summary>Pixels; null = the UNet's sample_size times the VAE factor.</summary>
    public int? Width { get; init; }
    public int? Height { get; init; }
    public int Steps { get; init; } = 50;
    /// <summary>Classifier-free guidance scale (diffusers' default 9.0); guidance is on when it is above 1.</summary>
    public double Guidance { get; init; } = 9.0;
    public long Seed { get; init; }
    /// <summary>Videos per UNet call (the CFG batch split, bounding activation memory); null = all at once.</summary>
    public int? VideosPerUnetCall { get; init; }
}

/// <summary>The clean latents (B, C, F, h, w, fp32, CPU) and the decoded video (B, 3, F, H, W) in [-1, 1] (CPU).</summary>
public sealed class TextToVideoSdResult(Tensor latents, Tensor video) : IDisposable
{
    public Tensor Latents { get; } = latents;
    public Tensor Video { get; } = video;

    /// <summary>diffusers' output_type "np" for video b: (F, H, W, 3) in [0, 1] = clamp(x / 2 + 0.5, 0, 1).</summary>
    public Tensor FramesUnit(int b = 0)
    {
        using var scope = NewDisposeScope();
        using var half = 0.5.ToScalar();
        return Video[b].mul(half).add(half).clamp(0.0, 1.0).permute(1, 2, 3, 0).contiguous().MoveToOuterDisposeScope();
    }

    public void Dispose() { Latents.Dispose(); Video.Dispose(); }
}

/// <summary>
/// diffusers `TextToVideoSDPipeline` (ModelScope text-to-video): noise randn((1, C, F, H/f, W/f)) on a CPU
/// generator, the CFG batch [negative, prompt], the UNet3D on the whole video, guidance, the scheduler step on the
/// frames folded into the batch, then every frame decoded by the VAE on latents / scaling_factor. Text encoder,
/// tokenizer and VAE are the image models' (<see cref="PromptEncoder"/>, <see cref="AutoencoderKL"/>).
/// </summary>
public sealed class TextToVideoSdPipeline : IDisposable
{
    public const string PipelineClass = "TextToVideoSDPipeline";

    public UNet3DConditionModel Unet { get; }
    public AutoencoderKL Vae { get; }
    public NoiseScheduler Scheduler { get; }
    public PromptEncoder Prompts { get; }
    public Device Device { get; }
    public ScalarType DType { get; }
    private readonly IDisposable[] _owned;

    public TextToVideoSdPipeline(UNet3DConditionModel unet, AutoencoderKL vae, NoiseScheduler scheduler, PromptEncoder prompts,
        Device device, ScalarType dtype, params IDisposable[] owned)
    {
        Unet = unet; Vae = vae; Scheduler = scheduler; Prompts = prompts; Device = device; DType = dtype;
        _owned = owned;
    }

    /// <summary>model_index.json's `_selfcascade_defaults` (guidance, pivot strength, steps), empty when absent.</summary>
    public ModelDefaults Defaults { get; init; } = new();

    /// <summary>diffusers' TextToVideoSDPipeline call defaults: guidance_scale 9.0, 50 steps (model_index.json may override).</summary>
    public double DefaultGuidance => Defaults.Guidance ?? 9.0;
    public int DefaultSteps => Defaults.Steps ?? ModelDefaults.DiffusersSteps;

    public int VaeScaleFactor => Vae.DownsampleFactor;
    /// <summary>Pixels per side the UNet was trained at (sample_size x VAE factor; 256 for text-to-video-ms-1.7b).</summary>
    public int NativeSize => (Unet.Config.SampleSize ?? 32) * VaeScaleFactor;

    /// <summary>
    /// Loads a diffusers TextToVideoSDPipeline folder (model_index.json with unet = UNet3DConditionModel, vae,
    /// text_encoder, tokenizer, scheduler). A folder of another kind is one clear error.
    /// </summary>
    public static TextToVideoSdPipeline FromPretrained(string folder, PipelineOptions? options = null) =>
        Load(folder, options, "text-to-video", (components, o, device, dtype, shared, owned) =>
        {
            var unet = UNet3DConditionModel.FromWeights(UNet3DConditionConfig.FromJson(components.Config("unet")),
                components.Weights("unet", o.Variant), device, dtype);
            owned.Add(unet);
            return new TextToVideoSdPipeline(unet, shared.Vae, shared.Scheduler, shared.Prompts, device, dtype, owned.ToArray())
            {
                Defaults = ModelDefaults.From(components.ModelIndex),
            };
        });

    /// <summary>
    /// The image pipeline of a TextToVideoSD folder's spatial half: its text encoder, VAE and scheduler with the
    /// <see cref="SpatialImageUNet"/> loaded from the UNet3D's weights (the temporal tensors are never read). This is
    /// what train-upsamplers trains on for a UNet3D model: the upsamplers work per frame, on this network's features
    /// (the tuned video cascade's low-res branch, <see cref="VideoPipeline.UpsamplerUNet"/>).
    /// </summary>
    public static StableDiffusionPipeline SpatialImagePipeline(string folder, PipelineOptions? options = null) =>
        Load(folder, options, "the spatial half of a text-to-video model", (components, o, device, dtype, shared, owned) =>
        {
            var unet = SpatialImageUNet.FromWeights(UNet3DConditionConfig.FromJson(components.Config("unet")),
                components.Weights("unet", o.Variant), device, dtype);
            owned.Add(unet);
            // ModelScope's text encoder is OpenCLIP ViT-H with linear projections: the SD 2.x family.
            return new StableDiffusionPipeline(ModelFamily.StableDiffusion2, unet, shared.Vae, shared.Scheduler, shared.Prompts,
                device, dtype, owned.ToArray(), vaeDType: shared.Vae.DType);
        });

    /// <summary>
    /// The loading both entry points share: options checked, the folder opened and checked, scheduler, text encoder
    /// and VAE loaded, then <paramref name="build"/> adds the UNet; everything loaded is disposed if any step fails.
    /// </summary>
    private static T Load<T>(string folder, PipelineOptions? options, string what,
        Func<FolderComponents, PipelineOptions, Device, ScalarType, SharedComponents, List<IDisposable>, T> build)
    {
        options ??= new PipelineOptions();
        if (options.Offload != SelfCascade.Offload.OffloadMode.None)
            throw new NotSupportedException($"model offload is not supported for {what} yet");
        using var components = OpenFolder(folder);
        var device = TorchRuntime.ResolveDevice(options.Device);
        var dtype = options.DType ?? TorchRuntime.DefaultDType(device);
        var owned = new List<IDisposable>();
        try
        {
            return build(components, options, device, dtype, LoadShared(components, options, device, dtype, owned), owned);
        }
        catch
        {
            foreach (var o in owned) o.Dispose();
            throw;
        }
    }

    private sealed record SharedComponents(NoiseScheduler Scheduler, PromptEncoder Prompts, AutoencoderKL Vae);

    private static FolderComponents OpenFolder(string folder)
    {
        var components = FolderComponents.Open(folder);
        try
        {
            var unetClass = components.Has("unet") ? components.Config("unet").OptionalString("_class_name") : null;
            var pipelineClass = components.ModelIndex.OptionalString("_class_name");
            if (unetClass != UNet3DConditionConfig.ClassName)
                throw new InvalidDataException($"{folder}: not a {PipelineClass} folder (model_index.json says '{pipelineClass ?? "?"}', "
                    + $"its unet is '{unetClass ?? "missing"}', expected {UNet3DConditionConfig.ClassName})");
            foreach (var c in new[] { "vae", "text_encoder", "tokenizer", "scheduler" })
                if (!components.Has(c)) throw new InvalidDataException($"{folder}: model_index.json has no '{c}' component");
            return components;
        }
        catch
        {
            components.Dispose();
            throw;
        }
    }

    /// <summary>Scheduler, text encoder (with its tokenizer) and VAE, each added to <paramref name="owned"/> as it loads.</summary>
    private static SharedComponents LoadShared(FolderComponents components, PipelineOptions options,
        Device device, ScalarType dtype, List<IDisposable> owned)
    {
        var scheduler = ComponentLoader.Scheduler(components, options);
        owned.Add(scheduler);
        var tokenizer = components.Tokenizer("tokenizer");
        var te = ComponentLoader.TextEncoder(components, "text_encoder", options, device, dtype);
        owned.Add(te);
        var vae = ComponentLoader.Vae(components, options, device, dtype);
        owned.Add(vae);
        return new SharedComponents(scheduler, new PromptEncoder(tokenizer, te), vae);
    }

    /// <summary>The text encoder's last hidden state for the prompt and, with guidance, the negative prompt ("" when null).</summary>
    public PromptEmbeddings EncodePrompt(string prompt, string? negativePrompt, bool classifierFreeGuidance) =>
        Prompts.Encode(prompt, negativePrompt ?? "", classifierFreeGuidance, Device, DType);

    /// <summary>randn((videos, C, frames, H/f, W/f)) on the CPU generator in fp32 (init_noise_sigma is 1 for DDIM), then moved.</summary>
    public Tensor InitialNoise(Generator generator, int videos, int frames, int width, int height)
    {
        using var scope = NewDisposeScope();
        var shape = new long[] { videos, Unet.InChannels, frames, height / VaeScaleFactor, width / VaeScaleFactor };
        var noise = randn(shape, dtype: ScalarType.Float32, generator: generator);
        if (Scheduler.InitNoiseSigma != 1.0)
        {
            using var s = Scheduler.InitNoiseSigma.ToScalar();
            noise = noise.mul(s);
        }
        return noise.to(Device).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The denoising loop over <paramref name="timesteps"/> from fp32 <paramref name="latents"/> (B, C, F, h, w).
    /// One dispose scope per step; cancellation between steps. <paramref name="videosPerCall"/> runs the UNet on
    /// that many videos of the CFG batch at a time (frames of one video are never split: they attend to each other).
    /// </summary>
    public Tensor Denoise(Tensor latents, IReadOnlyList<double> timesteps, PromptEmbeddings embeddings, double guidance,
        Generator? generator = null, VideoUNetForwardOptions? unetOptions = null, int? videosPerCall = null,
        IProgress<GenerationProgress>? progress = null, CancellationToken cancellationToken = default, int stage = 0, int stageCount = 1)
    {
        if (latents.dim() != 5) throw new ArgumentException($"latents must be (B, C, F, h, w); got [{string.Join(",", latents.shape)}]", nameof(latents));
        if (videosPerCall is int k && k < 1) throw new ArgumentException($"videos per UNet call must be at least 1 (got {k})", nameof(videosPerCall));
        using var mode = inference_mode();
        bool cfg = embeddings.HasGuidance;
        long videos = latents.shape[0], frames = latents.shape[2];
        using var states = embeddings.ForUnet((int)videos);
        using var guidanceScale = tensor(guidance, ScalarType.Float32, device: Device);
        var timestepTensors = timesteps.Select(t => Scheduler.TimestepTensor(t, Device)).ToList();
        try
        {
            var x = latents.alias();
            for (int i = 0; i < timesteps.Count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                double t = timesteps[i];
                using (var scope = NewDisposeScope())
                {
                    var input = cfg ? cat([x, x], 0) : x.alias();
                    var scaled = Scheduler.ScaleModelInput(input, t).to(DType);
                    var noise = UnetInChunks(scaled, timestepTensors[i], states, unetOptions, videosPerCall).to(ScalarType.Float32);
                    if (cfg)
                    {
                        var halves = noise.chunk(2, 0);
                        noise = halves[0] + guidanceScale * (halves[1] - halves[0]);
                    }
                    // diffusers steps the scheduler on the frames folded into the batch.
                    var next = Scheduler.Step(VideoLayout.ToFrames(noise), t, VideoLayout.ToFrames(x), generator);
                    next = VideoLayout.ToVideo(next, frames).contiguous();
                    x.Dispose();
                    x = next.MoveToOuterDisposeScope();
                }
                progress?.Report(new GenerationProgress("denoise", i + 1, timesteps.Count, stage, stageCount));
            }
            return x;
        }
        finally { foreach (var t in timestepTensors) t.Dispose(); }
    }

    private Tensor UnetInChunks(Tensor sample, Tensor timestep, Tensor states, VideoUNetForwardOptions? options, int? videosPerCall)
    {
        long b = sample.shape[0];
        if (videosPerCall is not int k || k >= b) return Unet.Forward(sample, timestep, states, options);
        using var scope = NewDisposeScope();
        var parts = new List<Tensor>();
        for (long start = 0; start < b; start += k)
        {
            long n = Math.Min(k, b - start);
            parts.Add(Unet.Forward(sample.narrow(0, start, n), timestep, states.narrow(0, start, n), options));
        }
        return cat(parts, 0).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Decodes scaled latents (B, C, F, h, w) frame by frame (at most <paramref name="framesPerDecode"/> per VAE call,
    /// each call tiled when <paramref name="tiling"/> says so) to (B, 3, F, H, W) fp32 pixels in [-1, 1] on the CPU.
    /// </summary>
    public Tensor DecodeVideo(Tensor latents, int framesPerDecode = 8, VaeTiling tiling = VaeTiling.Auto, TiledVaeOptions? tileOptions = null,
        CancellationToken cancellationToken = default)
    {
        if (framesPerDecode < 1) throw new ArgumentException($"frames per decode must be at least 1 (got {framesPerDecode})", nameof(framesPerDecode));
        using var mode = inference_mode();
        using var scope = NewDisposeScope();
        long frames = latents.shape[2];
        using var inv = (1.0 / Vae.ScalingFactor).ToScalar();
        var folded = VideoLayout.ToFrames(latents.to(ScalarType.Float32)).mul(inv);
        if (Vae.ShiftFactor is double shift) { using var s = shift.ToScalar(); folded = folded.add(s); }
        var options = (tileOptions ?? new TiledVaeOptions { TileSampleSize = Vae.Config.SampleSize ?? TiledVaeOptions.DefaultTileSampleSize })
            with { ScaleFactor = VaeScaleFactor };
        var parts = new List<Tensor>();
        for (long start = 0; start < folded.shape[0]; start += framesPerDecode)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var chunk = NewDisposeScope();
            var z = folded.narrow(0, start, Math.Min(framesPerDecode, folded.shape[0] - start)).to(Vae.DType);
            var decision = TiledVae.ShouldTile(tiling, z.shape[2], z.shape[3], options, (int)z.shape[0]) ? VaeTiling.On : VaeTiling.Off;
            parts.Add(TiledVae.DecodeWithPolicy(Vae.Decode, z, decision, options).to(ScalarType.Float32).cpu().MoveToOuterDisposeScope());
        }
        return VideoLayout.ToVideo(cat(parts, 0), frames).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>One text-to-video run as diffusers' pipeline call (one video per prompt).</summary>
    public TextToVideoSdResult Generate(TextToVideoSdRequest request, IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        int width = request.Width ?? NativeSize, height = request.Height ?? NativeSize;
        if (request.Frames < 1) throw new ArgumentException($"frames must be at least 1 (got {request.Frames})");
        if (width <= 0 || height <= 0 || width % VaeScaleFactor != 0 || height % VaeScaleFactor != 0)
            throw new ArgumentException($"size {width}x{height} must be positive multiples of {VaeScaleFactor} (the VAE factor)");
        if (request.Steps < 1) throw new ArgumentException($"steps must be at least 1 (got {request.Steps})");
        bool cfg = request.Guidance > 1.0;
        using var embeddings = EncodePrompt(request.Prompt, request.NegativePrompt, cfg);
        Scheduler.SetTimesteps(request.Steps);
        using var generator = new Generator((ulong)request.Seed);
        using var noise = InitialNoise(generator, 1, request.Frames, width, height);
        using var latents = Denoise(noise, Scheduler.Timesteps, embeddings, request.Guidance, generator, null, request.VideosPerUnetCall,
            progress, cancellationToken);
        var video = DecodeVideo(latents, cancellationToken: cancellationToken);
        return new TextToVideoSdResult(latents.cpu().clone(), video);
    }

    public void Dispose()
    {
        foreach (var o in _owned) o.Dispose();
    }
}
