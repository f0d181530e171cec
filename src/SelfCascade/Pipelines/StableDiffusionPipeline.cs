using System.Diagnostics;
using SelfCascade.Cascade;
using SelfCascade.Checkpoints;
using SelfCascade.Checkpoints.SingleFile;
using SelfCascade.Imaging;
using SelfCascade.IO;
using SelfCascade.Models.Clip;
using SelfCascade.Models.Unet;
using SelfCascade.Models.Vae;
using SelfCascade.Offload;
using SelfCascade.Runtime;
using SelfCascade.Schedulers;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Pipelines;

/// <summary>
/// Text-to-image for SD 1.x/2.x and SDXL, step for step as diffusers' StableDiffusionPipeline /
/// StableDiffusionXLPipeline: noise drawn on a CPU generator, classifier-free guidance with the negative half first,
/// the scheduler's scale/step, the VAE decode of latents / scaling_factor. The pieces (<see cref="EncodePrompt"/>,
/// <see cref="Denoise"/>, <see cref="DecodeLatents"/>) are public so the cascade and img2img reuse them.
/// A folder whose model_index.json has no <c>vae</c> is a pixel-space model (e.g. one made by <c>train-base</c>):
/// <see cref="Vae"/> is null, the "latents" are the RGB image in [-1, 1], the scale factor is 1 and decode/encode
/// are the identity.
/// </summary>
public sealed class StableDiffusionPipeline : IDisposable
{
    public DiffusersModelFolder? Folder { get; }
    public ModelFamily Family { get; }
    public UNet2DConditionModel Unet { get; }
    /// <summary>Null for a pixel-space model (no vae component): latents are pixels.</summary>
    public AutoencoderKL? Vae { get; }
    public NoiseScheduler Scheduler { get; private set; }
    public PromptEncoder Prompts { get; }
    public Device Device { get; }
    public ScalarType DType { get; }
    private readonly IDisposable[] _owned;
    private readonly ScalarType _vaeDType;

    /// <summary>The VAE's weight dtype: fp32 for a force_upcast VAE under fp16, else <see cref="DType"/>.</summary>
    public ScalarType VaeDType => _vaeDType;

    /// <summary>
    /// Free memory of the execution device (CUDA: cudaMemGetInfo), which decides <see cref="VaeTiling.Auto"/> there:
    /// tile only when the untiled decode would not fit. Null (the CPU): Auto keeps its pixel-count rule.
    /// </summary>
    public Func<long?>? FreeDeviceMemory { get; set; }

    /// <summary>Whether a decode of a latentHeight x latentWidth latent is tiled under <paramref name="tiling"/>.</summary>
    public bool ShouldTileDecode(VaeTiling tiling, long latentHeight, long latentWidth, int batch = 1, TiledVaeOptions? tileOptions = null)
    {
        var options = TileOptionsFor(tileOptions);
        int bytes = _vaeDType == ScalarType.Float32 ? 4 : 2;
        if (tiling == VaeTiling.Auto && FreeDeviceMemory?.Invoke() is long free)
        {
            if (latentHeight <= options.TileLatentSize && latentWidth <= options.TileLatentSize) return false;
            long estimate = VaeMemoryEstimate.UntiledDecodeBytes(latentHeight * VaeScaleFactor, latentWidth * VaeScaleFactor, batch, bytes);
            return estimate > free * 9 / 10; // a tenth kept for the allocator's fragmentation and other work
        }
        return TiledVae.ShouldTile(tiling, latentHeight, latentWidth, options, batch, null, bytes);
    }

    /// <summary>Moves weights between the CPU and <see cref="Device"/> when an offload mode is on (a no-op otherwise).</summary>
    public ModuleOffloader Offloader { get; init; } = new(OffloadMode.None, torch.CPU);

    /// <summary>The VAE's spatial factor: 2^(number of VAE blocks - 1), as diffusers' vae_scale_factor; 1 in pixel space.</summary>
    public int VaeScaleFactor => Vae?.DownsampleFactor ?? 1;

    /// <summary>Native pixel size: the UNet's sample_size (diffusers' default 64 when absent) times the VAE factor.</summary>
    public int NativeSize => (Unet.Config.SampleSize ?? 64) * VaeScaleFactor;

    public StableDiffusionPipeline(ModelFamily family, UNet2DConditionModel unet, AutoencoderKL? vae, NoiseScheduler scheduler,
        PromptEncoder prompts, Device device, ScalarType dtype, IDisposable[] owned, DiffusersModelFolder? folder = null, ScalarType? vaeDType = null)
    {
        Family = family; Unet = unet; Vae = vae; Scheduler = scheduler; Prompts = prompts; Device = device; DType = dtype;
        _owned = owned; Folder = folder; _vaeDType = vaeDType ?? dtype;
    }

    /// <summary>
    /// Loads every component on the asked device and dtype from a diffusers folder (model_index.json) or a
    /// single-file checkpoint in the original layout (<see cref="ModelSource.Resolve"/>; for a single file
    /// <see cref="PipelineOptions.ConfigDir"/> and <see cref="PipelineOptions.PredictionType"/> apply).
    /// </summary>
    public static StableDiffusionPipeline FromPretrained(string model, PipelineOptions? options = null)
    {
        options ??= new PipelineOptions();
        using var components = ModelSource.OpenComponents(model, new SingleFileOptions { ConfigDir = options.ConfigDir, PredictionType = options.PredictionType });
        return FromComponents(components, options);
    }

    /// <summary>
    /// Loads every component of a component set (folder, single file, hub snapshot): configs, tokenizers, and weights
    /// streamed from the set's tensor sources. The set can be disposed afterwards.
    /// </summary>
    public static StableDiffusionPipeline FromComponents(IModelComponents components, PipelineOptions? options = null)
    {
        options ??= new PipelineOptions();
        var family = components.Family;
        if (family == ModelFamily.Unknown) throw new InvalidDataException($"{components.Source}: no unet component, not a Stable Diffusion folder");
        var device = TorchRuntime.ResolveDevice(options.Device);
        var dtype = options.DType ?? TorchRuntime.DefaultDType(device);
        // With offload the weights are loaded on the CPU and only visit the device while they run.
        var execution = device;
        if (options.Offload != OffloadMode.None) device = torch.CPU;
        var owned = new List<IDisposable>();
        try
        {
            var scheduler = ComponentLoader.Scheduler(components, options);
            owned.Add(scheduler);
            var tokenizer = components.Tokenizer("tokenizer");
            var te = ComponentLoader.TextEncoder(components, "text_encoder", options, device, dtype);
            owned.Add(te);
            ClipTokenizer? tokenizer2 = null;
            ClipTextModel? te2 = null;
            if (family == ModelFamily.StableDiffusionXL)
            {
                tokenizer2 = components.Tokenizer("tokenizer_2");
                te2 = ComponentLoader.TextEncoder(components, "text_encoder_2", options, device, dtype);
                owned.Add(te2);
            }
            var unet = UNet2DConditionModel.FromWeights(UNet2DConditionConfig.FromJson(components.Config("unet")),
                components.Weights("unet", options.Variant), device, dtype);
            owned.Add(unet);
            var vaeDType = dtype;
            AutoencoderKL? vae = null;
            if (components.Has("vae"))
            {
                vae = ComponentLoader.Vae(components, options, device, dtype);
                owned.Add(vae);
                vaeDType = vae.DType;
            }
            bool forceZeros = components.ModelIndex.Bool("force_zeros_for_empty_prompt", true);
            var prompts = new PromptEncoder(tokenizer, te, tokenizer2, te2, forceZeros);
            var folder = (components as FolderComponents)?.Folder;
            var offloader = new ModuleOffloader(options.Offload, execution);
            owned.Add(offloader);
            foreach (var m in new nn.Module?[] { te, te2, unet, vae }) if (m is not null) offloader.AttachSequential(m);
            if (options.Offload == OffloadMode.Sequential)
            {
                unet.ExecutionDevice = execution;
                te.ExecutionDevice = execution;
                if (te2 is not null) te2.ExecutionDevice = execution;
            }
            return new StableDiffusionPipeline(family, unet, vae, scheduler, prompts, execution, dtype, owned.ToArray(), folder, vaeDType)
            {
                Defaults = ModelDefaults.From(components.ModelIndex),
                LoadedFrom = components.Source,
                Offloader = offloader,
                FreeDeviceMemory = execution.type == DeviceType.CUDA
                    ? new SelfCascade.Runtime.Doctor.CudaProbe().DeviceMemoryFree(TorchRuntime.LibTorchDirectory, Math.Max(0, (int)execution.index))
                    : null,
            };
        }
        catch
        {
            foreach (var o in owned) o.Dispose();
            throw;
        }
    }

    /// <summary>The folder or file the pipeline was loaded from.</summary>
    public string? LoadedFrom { get; init; }

    /// <summary>Swaps the scheduler (e.g. for a per-request choice); the old one is disposed.</summary>
    public void UseScheduler(NoiseScheduler scheduler)
    {
        if (ReferenceEquals(scheduler, Scheduler)) return;
        Scheduler.Dispose();
        Scheduler = scheduler;
        for (int i = 0; i < _owned.Length; i++) if (_owned[i] is NoiseScheduler) _owned[i] = scheduler;
    }

    /// <summary>The folder's sampling defaults (model_index.json `_selfcascade_defaults`), if any.</summary>
    public ModelDefaults Defaults { get; init; } = new();

    public double DefaultGuidance => Defaults.Guidance ?? (Family == ModelFamily.StableDiffusionXL ? 5.0 : 7.5);
    public double DefaultPivotStrength => Defaults.PivotStrength ?? ModelDefaults.PaperPivotStrength;
    public int DefaultSteps => Defaults.Steps ?? ModelDefaults.DiffusersSteps;

    /// <summary>
    /// Optional instrumentation, off (null) by default: told the wall time of every text-encoder, UNet and VAE call
    /// (<see cref="INetworkCallTimer"/>). Used by the cascade benchmark to measure the time outside the networks.
    /// </summary>
    public INetworkCallTimer? CallTimer { get; set; }

    /// <summary>
    /// Optional, off (null) by default: shown the latents after every denoising step (stage, step, the fp32 tensor),
    /// on the denoising thread. The tensor stays owned by the loop: read it (e.g. decode a preview), never keep or
    /// dispose it. The server streams stage images and latent previews from it.
    /// </summary>
    public Action<DenoiseStepLatents>? StepObserver { get; set; }

    public PromptEmbeddings EncodePrompt(string prompt, string? negativePrompt, bool classifierFreeGuidance)
    {
        var encoders = Prompts.TextEncoders;
        using var first = Offloader.Use(encoders[0]);
        using var second = Offloader.Use(encoders.Count > 1 ? encoders[1] : null);
        var clock = NetworkCallClock.Start(CallTimer, Device);
        var embeddings = Prompts.Encode(prompt, negativePrompt, classifierFreeGuidance, Device, DType);
        clock.Stop(NetworkCall.TextEncoder);
        return embeddings;
    }

    /// <summary>
    /// Checks a pixel size: both sides positive multiples of the VAE factor (the UNet itself takes any latent size,
    /// resizing its upsamplers to the skip tensors as diffusers' forward_upsample_size does).
    /// </summary>
    public void ValidateSize(int width, int height)
    {
        int multiple = VaeScaleFactor;
        if (width <= 0 || height <= 0) throw new ArgumentException($"size {width}x{height} must be positive");
        if (width % multiple != 0 || height % multiple != 0)
            throw new ArgumentException($"size {width}x{height} must be a multiple of {multiple} (the VAE factor) on both sides");
    }

    /// <summary>The initial noise, drawn on the CPU generator in fp32 as diffusers' randn_tensor, then moved.</summary>
    public Tensor InitialNoise(Generator generator, int count, int width, int height)
    {
        using var scope = NewDisposeScope();
        var shape = new long[] { count, Unet.Config.InChannels, height / VaeScaleFactor, width / VaeScaleFactor };
        var noise = randn(shape, dtype: ScalarType.Float32, generator: generator).to(Device);
        return noise.MoveToOuterDisposeScope();
    }

    /// <summary>SDXL's `add_time_ids`: (original h, w, crop top, left, target h, w) for the size being sampled.</summary>
    public Tensor TimeIds(int width, int height, int batch)
    {
        using var scope = NewDisposeScope();
        var ids = tensor(new float[] { height, width, 0, 0, height, width }, [1, 6]).to(DType).to(Device);
        return ids.repeat(batch, 1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The denoising loop over <paramref name="timesteps"/> starting from <paramref name="latents"/> (fp32, already
    /// scaled by init_noise_sigma or re-noised). Returns the final latents (fp32). One dispose scope per step keeps
    /// the live tensor count flat; cancellation is checked between steps.
    /// </summary>
    public Tensor Denoise(Tensor latents, IReadOnlyList<double> timesteps, PromptEmbeddings embeddings, double guidance,
        int imagesPerPrompt, int width, int height, Generator? generator, UNetForwardOptions? unetOptions = null,
        IProgress<GenerationProgress>? progress = null, CancellationToken cancellationToken = default, int stage = 0, int stageCount = 1,
        Func<double, UNetForwardOptions?>? optionsForStep = null)
    {
        using var mode = torch.inference_mode();
        using var onDevice = Offloader.Use(Unet);
        bool cfg = embeddings.HasGuidance;
        using var states = embeddings.ForUnet(imagesPerPrompt);
        using var pooled = embeddings.PooledForUnet(imagesPerPrompt);
        int unetBatch = (int)latents.shape[0] * (cfg ? 2 : 1);
        using var timeIds = pooled is null ? null : TimeIds(width, height, unetBatch);
        var added = pooled is null ? null : new UNetAddedConditions(pooled, timeIds!);
        using var guidanceScale = tensor(guidance, ScalarType.Float32, device: Device);
        // Every per-step input the UNet needs from the host is uploaded before the loop (the scheduler's own
        // coefficients are host doubles passed as kernel scalars), so the loop queues device work only and never
        // waits for the device: no .item(), no data<T>(), no per-step host-to-device copies of timesteps.
        using var timestepTensors = new DisposableList(timesteps.Select(t => Scheduler.TimestepTensor(t, Device)));
        var x = latents.alias();
        for (int i = 0; i < timesteps.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            double t = timesteps[i];
            using (var scope = NewDisposeScope())
            {
                var input = cfg ? cat([x, x], 0) : x.alias();
                var scaled = Scheduler.ScaleModelInput(input, t);
                var tt = timestepTensors[i];
                var options = optionsForStep is null ? unetOptions : optionsForStep(t);
                var unetInput = scaled.to(DType);
                var clock = NetworkCallClock.Start(CallTimer, Device);
                var unetOutput = Unet.Forward(unetInput, tt, states, added, options);
                clock.Stop(NetworkCall.Unet, stage);
                var noise = unetOutput.to(ScalarType.Float32);
                if (cfg)
                {
                    var halves = noise.chunk(2, 0);
                    noise = halves[0] + guidanceScale * (halves[1] - halves[0]);
                }
                var next = Scheduler.Step(noise, t, x, generator);
                x.Dispose();
                x = next.MoveToOuterDisposeScope();
            }
            progress?.Report(new GenerationProgress("denoise", i + 1, timesteps.Count, stage, stageCount));
            StepObserver?.Invoke(new DenoiseStepLatents(stage, stageCount, i + 1, timesteps.Count, x));
        }
        return x;
    }

    /// <summary>
    /// The tiling used for <paramref name="given"/> options (null: diffusers' <c>enable_tiling()</c> defaults for this VAE,
    /// tiles of the VAE config's sample_size, 512 px when it has none), with the VAE's scale factor.
    /// </summary>
    public TiledVaeOptions TileOptionsFor(TiledVaeOptions? given) =>
        (given ?? new TiledVaeOptions { TileSampleSize = Vae?.Config.SampleSize ?? TiledVaeOptions.DefaultTileSampleSize })
        with { ScaleFactor = VaeScaleFactor };

    /// <summary>
    /// VAE decode of scaled latents: <c>vae.decode(latents / scaling_factor + shift_factor)</c>, output in [-1, 1];
    /// tiled (bounded memory) when the policy says so (<see cref="TiledVae.ShouldTile"/>; Auto keeps every
    /// decode up to 1024x1024 pixels untiled, hence identical to diffusers'). Pixel space (no VAE): the latents, fp32.
    /// </summary>
    public Tensor DecodeLatents(Tensor latents, VaeTiling tiling = VaeTiling.Auto, TiledVaeOptions? tileOptions = null)
    {
        using var mode = torch.inference_mode();
        using var scope = NewDisposeScope();
        if (Vae is null) return latents.to(ScalarType.Float32).clone().MoveToOuterDisposeScope();
        using var onDevice = Offloader.Use(Vae);
        var z = latents.to(ScalarType.Float32) / Vae.ScalingFactor;
        if (Vae.ShiftFactor is double shift) z = z + shift;
        z = z.to(_vaeDType);
        var options = TileOptionsFor(tileOptions);
        var decision = ShouldTileDecode(tiling, z.shape[2], z.shape[3], (int)z.shape[0], options) ? VaeTiling.On : VaeTiling.Off;
        var image = TiledVae.DecodeWithPolicy(TimedDecode, z, decision, options).to(ScalarType.Float32);
        return image.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// VAE encode of an image in [-1, 1] to scaled latents: the posterior's mean (or, with a generator, a sample as
    /// diffusers' <c>latent_dist.sample(generator)</c>), times scaling_factor; tiled for large images. Pixel space
    /// (no VAE): the image itself, fp32 on the pipeline's device.
    /// </summary>
    public Tensor EncodeImage(Tensor image, Generator? generator = null, VaeTiling tiling = VaeTiling.Auto, TiledVaeOptions? tileOptions = null)
    {
        using var mode = torch.inference_mode();
        using var scope = NewDisposeScope();
        if (Vae is null) return image.to(ScalarType.Float32).to(Device).clone().MoveToOuterDisposeScope();
        using var onDevice = Offloader.Use(Vae);
        var x = image.to(_vaeDType).to(Device);
        var options = TileOptionsFor(tileOptions);
        Tensor z;
        if (TiledVae.ShouldTile(tiling, x.shape[2] / VaeScaleFactor, x.shape[3] / VaeScaleFactor, options))
        {
            // Tiles blend the posterior's moments (mean, log-variance), as diffusers' tiled encode does.
            var moments = TiledVae.Encode(t => { using var p = TimedEncode(t); return cat([p.Mean, p.LogVar], 1); }, x, options);
            using var posterior = new DiagonalGaussianDistribution(moments);
            z = generator is null ? posterior.Mean.alias() : posterior.Sample(generator);
        }
        else
        {
            using var posterior = TimedEncode(x);
            z = generator is null ? posterior.Mean.alias() : posterior.Sample(generator);
        }
        if (Vae.ShiftFactor is double shift) z = z - shift;
        return (z.to(ScalarType.Float32) * Vae.ScalingFactor).MoveToOuterDisposeScope();
    }

    private Tensor TimedDecode(Tensor z)
    {
        var clock = NetworkCallClock.Start(CallTimer, Device);
        var image = Vae!.Decode(z);
        clock.Stop(NetworkCall.VaeDecode);
        return image;
    }

    private DiagonalGaussianDistribution TimedEncode(Tensor x)
    {
        var clock = NetworkCallClock.Start(CallTimer, Device);
        var posterior = Vae!.Encode(x);
        clock.Stop(NetworkCall.VaeEncode);
        return posterior;
    }

    /// <summary>Text-to-image at one size (the `direct` method): sample from noise, decode, convert.</summary>
    public GenerationResult Generate(GenerationRequest request, IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        int width = request.Width > 0 ? request.Width : NativeSize;
        int height = request.Height > 0 ? request.Height : NativeSize;
        ValidateRequest(request);
        ValidateSize(width, height);
        var timings = new Dictionary<string, double>();
        var sw = Stopwatch.StartNew();
        double guidance = request.Guidance ?? DefaultGuidance;
        using var embeddings = EncodePrompt(request.Prompt, request.NegativePrompt, guidance > 1.0);
        timings["text_encode"] = sw.Elapsed.TotalSeconds;
        sw.Restart();
        using var generator = new Generator((ulong)request.Seed);
        Scheduler.SetTimesteps(request.Steps);
        using var noise = InitialNoise(generator, request.NumImages, width, height);
        using var sigma = tensor(Scheduler.InitNoiseSigma, ScalarType.Float32, device: Device);
        using var start = noise * sigma;
        using var latents = Denoise(start, Scheduler.Timesteps, embeddings, guidance, request.NumImages, width, height,
            generator, null, progress, cancellationToken);
        timings["denoise"] = sw.Elapsed.TotalSeconds;
        sw.Restart();
        progress?.Report(new GenerationProgress("decode", 0, 1));
        var images = DecodeToImages(latents);
        timings["decode"] = sw.Elapsed.TotalSeconds;
        return new GenerationResult(images, CascadeGenerator.CpuCopy(latents), timings, width, height);
    }

    /// <summary>Decodes a batch of latents one image at a time (bounded memory) into 8-bit images.</summary>
    public List<RgbImage> DecodeToImages(Tensor latents)
    {
        var images = new List<RgbImage>();
        for (int i = 0; i < latents.shape[0]; i++)
        {
            using var scope = NewDisposeScope();
            var image = DecodeLatents(latents[i..(i + 1)]);
            images.Add(RgbImage.FromDecoderOutput(image));
        }
        return images;
    }

    public static void ValidateRequest(GenerationRequest request)
    {
        if (request.Steps < 1) throw new ArgumentException($"steps must be at least 1 (got {request.Steps})");
        if (request.NumImages < 1) throw new ArgumentException($"num-images must be at least 1 (got {request.NumImages})");
        if (request.Seed < 0) throw new ArgumentException($"seed must be non-negative (got {request.Seed})");
        if (request.Guidance is double g && (double.IsNaN(g) || g < 0)) throw new ArgumentException($"guidance must be ≥ 0 (got {g})");
    }

    public void Dispose()
    {
        foreach (var o in _owned) o.Dispose();
    }
}

/// <summary>Tensors made before a loop and freed after it.</summary>
internal sealed class DisposableList(IEnumerable<Tensor> tensors) : IDisposable
{
    private readonly List<Tensor> _items = tensors.ToList();
    public Tensor this[int i] => _items[i];
    public void Dispose() { foreach (var t in _items) t.Dispose(); }
}

/// <summary>Images (and the final latents, scaled, fp32 on the CPU) with wall-clock seconds per phase.</summary>
public sealed class GenerationResult(List<RgbImage> images, Tensor latents, Dictionary<string, double> timings, int width, int height) : IDisposable
{
    public IReadOnlyList<RgbImage> Images { get; } = images;
    public Tensor Latents { get; } = latents;
    public IReadOnlyDictionary<string, double> Timings { get; } = timings;
    public int Width { get; } = width;
    public int Height { get; } = height;
    public void Dispose() => Latents.Dispose();
}

/// <summary>The latents after one denoising step (see <see cref="StableDiffusionPipeline.StepObserver"/>); borrowed, not owned.</summary>
public readonly record struct DenoiseStepLatents(int Stage, int StageCount, int Step, int TotalSteps, Tensor Latents);
