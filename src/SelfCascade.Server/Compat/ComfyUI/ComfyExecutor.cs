using System.Globalization;
using System.Text.Json.Nodes;
using SelfCascade.Cascade;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Server.Compat.ComfyUI;

/// <summary>
/// Runs a validated API-format graph with our pipelines, node by node as ComfyUI's executor does (each output node
/// pulls its inputs depth-first; outputs that need fewer nodes first), reporting executing/progress/executed events.
/// KSampler follows ComfyUI's semantics on our schedulers:
/// <list type="bullet">
/// <item>noise: <c>torch.manual_seed(seed); torch.randn(latent.shape)</c> on the CPU (comfy.sample.prepare_noise), the
/// same tensor diffusers draws with a CPU generator seeded <c>seed</c>; the generator then serves the scheduler's
/// own random draws (ancestral steps), as in diffusers' pipelines;</item>
/// <item>denoise ≥ 0.9999 on an EmptyLatentImage: text-to-image, start = noise × init_noise_sigma (as diffusers);</item>
/// <item>denoise d &lt; 1 (or a non-empty latent): a schedule of <c>int(steps / d)</c> steps of which the last
/// <c>steps</c> run (comfy KSampler.set_steps), the latent re-noised with the scheduler's add_noise at the first of
/// them. This is diffusers' img2img (get_timesteps) whenever <c>int(int(steps/d)·d) = steps</c>, so
/// LatentUpscaleBy(bilinear, 2) + KSampler(seed s+1, steps N, denoise d) is exactly our cascade stage 1 with
/// <c>int(N/d)</c> stage steps and pivot strength d after a base KSampler(seed s).</item>
/// </list>
/// </summary>
public sealed class ComfyExecutor : IDisposable
{
    private readonly ComfyGraph _graph;
    private readonly IComfyHost _host;
    private readonly IComfyEvents _events;
    private readonly CancellationToken _ct;
    private readonly Dictionary<string, object[]> _outputs = new();
    private readonly List<string> _executed = new();
    private readonly Dictionary<string, JsonObject> _ui = new();

    private ComfyExecutor(ComfyGraph graph, IComfyHost host, IComfyEvents events, CancellationToken ct)
    {
        _graph = graph; _host = host; _events = events; _ct = ct;
    }

    /// <summary>
    /// Executes <paramref name="outputs"/> (from <see cref="ComfyValidator.Validate"/>) and returns each output node's
    /// "output" object ({"images": [...]}). Throws <see cref="ComfyExecutionException"/> naming the failing node.
    /// </summary>
    public static IReadOnlyDictionary<string, JsonObject> Execute(ComfyGraph graph, IReadOnlyList<string> outputs, IComfyHost host,
        IComfyEvents events, CancellationToken ct = default)
    {
        using var run = new ComfyExecutor(graph, host, events, ct);
        // As ComfyUI: the output that depends on the fewest not-yet-run nodes first, ties by id.
        var pending = outputs.ToList();
        while (pending.Count > 0)
        {
            var next = pending.OrderBy(run.CountToRun).ThenBy(id => id, StringComparer.Ordinal).First();
            pending.Remove(next);
            run.Run(next);
        }
        return run._ui;
    }

    private int CountToRun(string id)
    {
        var seen = new HashSet<string>();
        void Visit(string n)
        {
            if (_outputs.ContainsKey(n) || !seen.Add(n)) return;
            foreach (var (_, v) in _graph[n]!.Inputs)
                if (ComfyNode.TryLink(v, out var link)) Visit(link!.NodeId);
        }
        Visit(id);
        return seen.Count;
    }

    private void Run(string id)
    {
        if (_outputs.ContainsKey(id)) return;
        var node = _graph[id]!;
        foreach (var (_, v) in node.Inputs)
            if (ComfyNode.TryLink(v, out var link)) Run(link!.NodeId);
        _ct.ThrowIfCancellationRequested();
        _events.Executing(id);
        try
        {
            _outputs[id] = Evaluate(node);
        }
        catch (Exception e) when (e is not ComfyExecutionException)
        {
            throw new ComfyExecutionException(id, node.ClassType!, _executed.ToList(), e);
        }
        _executed.Add(id);
    }

    // ------------------------------------------------------------------ inputs

    private T In<T>(ComfyNode node, string name) where T : class
    {
        if (!ComfyNode.TryLink(node.Inputs[name], out var link)) throw new ArgumentException($"{name} must be a link");
        return _outputs[link!.NodeId][link.Slot] as T ?? throw new ArgumentException($"{name}: node {link.NodeId} output {link.Slot} is not a {typeof(T).Name}");
    }

    private static decimal Num(ComfyNode node, string name, bool integer) =>
        (integer ? ComfyValues.ToInt(node.Inputs[name]) : ComfyValues.ToFloat(node.Inputs[name]))
        ?? throw new ArgumentException($"{name} is not a number");
    private static int Int(ComfyNode node, string name) => (int)Num(node, name, true);
    private static double Float(ComfyNode node, string name) => (double)Num(node, name, false);
    private static string Str(ComfyNode node, string name) => ComfyValues.ToStr(node.Inputs[name]) ?? throw new ArgumentException($"{name} is not a string");

    /// <summary>The seed as torch.manual_seed takes it: 0 ≤ seed &lt; 2^64.</summary>
    private static ulong Seed(ComfyNode node) => (ulong)Num(node, "seed", true);

    // ------------------------------------------------------------------ nodes

    private object[] Evaluate(ComfyNode node) => node.ClassType switch
    {
        "CheckpointLoaderSimple" => CheckpointLoader(node),
        "LoraLoader" => LoraLoader(node),
        "CLIPTextEncode" => [CLIPTextEncode(node)],
        "EmptyLatentImage" => [ComfyLatent.Empty(Int(node, "width"), Int(node, "height"), Int(node, "batch_size"))],
        "KSampler" => [KSampler(node)],
        "LatentUpscale" => [LatentUpscale(node)],
        "LatentUpscaleBy" => [LatentUpscaleBy(node)],
        "VAEDecode" => [VaeDecode(node)],
        "VAEEncode" => [VaeEncode(node)],
        "LoadImage" => LoadImage(node),
        "SaveImage" => Save(node, Str(node, "filename_prefix"), "output"),
        "PreviewImage" => Save(node, "ComfyUI", "temp"),
        ComfyNodeCatalog.SelfCascadeNode => [SelfCascadeUpscale(node)],
        var other => throw new NotSupportedException($"node type {other} is not supported"),
    };

    private object[] CheckpointLoader(ComfyNode node)
    {
        var name = Str(node, "ckpt_name");
        _host.Pipeline(name); // loads now, so a load failure is this node's error
        var m = new ComfyModelRef(name);
        return [m, m, m];
    }

    /// <summary>ComfyUI's LoraLoader: the LoRA joins the MODEL at strength_model and the CLIP at strength_clip (0 = not applied there).</summary>
    private object[] LoraLoader(ComfyNode node)
    {
        var model = In<ComfyModelRef>(node, "model");
        var clip = In<ComfyModelRef>(node, "clip");
        var name = Str(node, "lora_name");
        double sm = Float(node, "strength_model"), sc = Float(node, "strength_clip");
        return [sm == 0 ? model : model with { Loras = [.. model.Loras, new ComfyLora(name, sm)] },
                sc == 0 ? clip : clip with { Loras = [.. clip.Loras, new ComfyLora(name, sc)] }];
    }

    private ComfyConditioning CLIPTextEncode(ComfyNode node)
    {
        var clip = In<ComfyModelRef>(node, "clip");
        return new ComfyConditioning(Str(node, "text"), clip.Checkpoint) { ClipLoras = clip.Loras };
    }

    private (StableDiffusionPipeline Pipe, string Checkpoint) Model(ComfyNode node)
    {
        var model = In<ComfyModelRef>(node, "model");
        foreach (var c in new[] { "positive", "negative" })
            if (In<ComfyConditioning>(node, c).Checkpoint != model.Checkpoint)
                throw new NotSupportedException($"{c} was encoded with the CLIP of '{In<ComfyConditioning>(node, c).Checkpoint}', " +
                    $"but the model is '{model.Checkpoint}'; mixing checkpoints' text encoders and UNets is not supported");
        return (_host.Pipeline(model.Checkpoint), model.Checkpoint);
    }

    /// <summary>
    /// The LoRAs a sampler node runs with, merged for the node and restored after it (also on failure or cancel):
    /// the MODEL's on the UNet only, the prompts' CLIP's on the text encoders only, so strength_model and
    /// strength_clip are honoured exactly. Both prompts must come from the same CLIP chain (they are encoded together).
    /// </summary>
    private IDisposable? SamplerLoras(ComfyNode node, StableDiffusionPipeline pipe)
    {
        var model = In<ComfyModelRef>(node, "model");
        var positive = In<ComfyConditioning>(node, "positive").ClipLoras;
        var negative = In<ComfyConditioning>(node, "negative").ClipLoras;
        if (!positive.SequenceEqual(negative))
            throw new NotSupportedException("positive and negative were encoded by CLIPs with different LoRAs; both prompts must come from the same LoraLoader chain");
        if (model.Loras.Count == 0 && positive.Count == 0) return null;
        var uses = model.Loras.Select(l => new SelfCascade.Server.Extras.LoraFileUseByName(l.Name, l.Strength, 0))
            .Concat(positive.Select(l => new SelfCascade.Server.Extras.LoraFileUseByName(l.Name, 0, l.Strength))).ToList();
        return _host.ApplyLoras(pipe, uses);
    }

    private IProgress<GenerationProgress> ProgressOf(ComfyNode node, Func<GenerationProgress, (int Value, int Max)>? map = null) =>
        new SyncProgress(p =>
        {
            if (p.Phase != "denoise") return;
            var (v, m) = map?.Invoke(p) ?? (p.Step, p.TotalSteps);
            _events.Progress(node.Id, v, m);
        });

    private ComfyLatent KSampler(ComfyNode node)
    {
        var (pipe, checkpoint) = Model(node);
        using var loras = SamplerLoras(node, pipe);
        var latent = In<ComfyLatent>(node, "latent_image");
        var choice = ComfySamplers.Resolve(Str(node, "sampler_name"), Str(node, "scheduler"), out var why) ?? throw new ArgumentException(why);
        var samples = Sample(pipe, latent, Seed(node), Int(node, "steps"), Float(node, "cfg"), choice,
            In<ComfyConditioning>(node, "positive").Text, In<ComfyConditioning>(node, "negative").Text, Float(node, "denoise"), ProgressOf(node), _ct);
        return ComfyLatent.FromSamples(samples, pipe.VaeScaleFactor, checkpoint);
    }

    /// <summary>KSampler on our schedulers (see the class summary); returns fp32 latents on the pipeline's device.</summary>
    public static Tensor Sample(StableDiffusionPipeline pipe, ComfyLatent latent, ulong seed, int steps, double cfg, SamplerChoice choice,
        string positive, string negative, double denoise, IProgress<GenerationProgress>? progress, CancellationToken ct)
    {
        using var mode = inference_mode();
        var shape = latent.ShapeFor(pipe);
        int batch = (int)shape[0], width = (int)shape[3] * pipe.VaeScaleFactor, height = (int)shape[2] * pipe.VaeScaleFactor;
        if (denoise <= 0)
        {
            using var unchanged = latent.SamplesFor(pipe);
            return unchanged.to(pipe.Device).clone(); // comfy: no sigmas, nothing to do
        }
        using var swap = SchedulerSwap.Use(pipe, choice);
        var scheduler = pipe.Scheduler;
        using var emb = pipe.EncodePrompt(positive, negative, cfg > 1.0);
        using var generator = new Generator(seed);
        bool full = denoise > 0.9999;
        if (full && latent.IsEmpty)
        {
            scheduler.SetTimesteps(steps);
            Tensor start;
            using (var scope = NewDisposeScope())
            {
                var noise = randn(shape, dtype: ScalarType.Float32, generator: generator).to(pipe.Device);
                start = (noise * tensor(scheduler.InitNoiseSigma, ScalarType.Float32, device: pipe.Device)).MoveToOuterDisposeScope();
            }
            using (start)
                return pipe.Denoise(start, scheduler.Timesteps, emb, cfg, batch, width, height, generator, null, progress, ct);
        }
        int total = full ? steps : (int)(steps / denoise);
        scheduler.SetTimesteps(total);
        int begin = (total - steps) * scheduler.Order;
        if (scheduler.SupportsBeginIndex) scheduler.SetBeginIndex(begin);
        var timesteps = scheduler.Timesteps.Skip(begin).ToArray();
        Tensor noisy;
        using (var scope = NewDisposeScope())
        {
            var x0 = latent.SamplesFor(pipe).to(pipe.Device);
            var noise = randn(shape, dtype: ScalarType.Float32, generator: generator).to(pipe.Device);
            noisy = scheduler.AddNoise(x0, noise, timesteps[0]).MoveToOuterDisposeScope();
        }
        using (noisy)
            return pipe.Denoise(noisy, timesteps, emb, cfg, batch, width, height, generator, null, progress, ct);
    }

    private ComfyLatent LatentUpscale(ComfyNode node)
    {
        var latent = In<ComfyLatent>(node, "samples");
        int width = Int(node, "width"), height = Int(node, "height");
        if (width == 0 && height == 0) return Copy(latent);
        // comfy: a zero side keeps the aspect ratio (rounded in pixels). ComfyUI also clamps sides to ≥ 64 px; that
        // clamp is left out so models with a native size below 64 (the embedded emoji model) can be resized.
        if (width == 0) width = (int)Math.Round((double)latent.Width * height / latent.Height);
        else if (height == 0) height = (int)Math.Round((double)latent.Height * width / latent.Width);
        return Resize(latent, width, height, Str(node, "upscale_method"), Str(node, "crop") == "center");
    }

    private ComfyLatent LatentUpscaleBy(ComfyNode node)
    {
        var latent = In<ComfyLatent>(node, "samples");
        double scale = Float(node, "scale_by");
        // comfy: round(samples.shape[-1] * scale_by) on the latent's own grid (Python's round: half to even).
        int f = latent.IsEmpty ? 1 : latent.VaeFactor;
        int w = (int)Math.Round(latent.Width / f * scale, MidpointRounding.ToEven), h = (int)Math.Round(latent.Height / f * scale, MidpointRounding.ToEven);
        return Resize(latent, w * f, h * f, Str(node, "upscale_method"), crop: false);
    }

    private static ComfyLatent Copy(ComfyLatent l) =>
        l.IsEmpty ? ComfyLatent.Empty(l.Width, l.Height, l.Batch) : ComfyLatent.FromSamples(l.Samples!.clone(), l.VaeFactor, l.Checkpoint!);

    /// <summary>comfy.utils.common_upscale: optional center crop to the target aspect, then torch interpolate (align_corners=False).</summary>
    private static ComfyLatent Resize(ComfyLatent latent, int width, int height, string method, bool crop)
    {
        if (latent.IsEmpty) return latent.ResizedEmpty(width, height);
        int f = latent.VaeFactor;
        // Targets are pixels, divided by the VAE factor (comfy: width // 8).
        long lw = width / f, lh = height / f;
        if (lw < 1 || lh < 1) throw new ArgumentException($"target {width}x{height} is smaller than one latent pixel");
        using var scope = NewDisposeScope();
        var s = latent.Samples!;
        if (crop)
        {
            long oh = s.shape[2], ow = s.shape[3];
            double oldAspect = (double)ow / oh, newAspect = (double)lw / lh;
            long x = 0, y = 0;
            if (oldAspect > newAspect) x = (long)Math.Round((ow - ow * (newAspect / oldAspect)) / 2);
            else if (oldAspect < newAspect) y = (long)Math.Round((oh - oh * (oldAspect / newAspect)) / 2);
            s = s[.., .., (int)y..(int)(oh - y), (int)x..(int)(ow - x)];
        }
        var mode = method switch
        {
            "nearest-exact" => InterpolationMode.NearestExact,
            "bilinear" => InterpolationMode.Bilinear,
            "area" => InterpolationMode.Area,
            "bicubic" => InterpolationMode.Bicubic,
            _ => throw new ArgumentException($"upscale_method '{method}' is not supported"),
        };
        bool? alignCorners = mode is InterpolationMode.Bilinear or InterpolationMode.Bicubic ? false : null;
        var up = nn.functional.interpolate(s, size: [lh, lw], mode: mode, align_corners: alignCorners);
        return ComfyLatent.FromSamples(up.MoveToOuterDisposeScope(), f, latent.Checkpoint!);
    }

    private ComfyImage VaeDecode(ComfyNode node)
    {
        var latent = In<ComfyLatent>(node, "samples");
        var pipe = _host.Pipeline(In<ComfyModelRef>(node, "vae").Checkpoint);
        using var samples = latent.SamplesFor(pipe);
        var images = new List<Tensor>();
        try
        {
            for (int i = 0; i < samples.shape[0]; i++)
            {
                _ct.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                images.Add(pipe.DecodeLatents(samples[i..(i + 1)].to(pipe.Device)).cpu().MoveToOuterDisposeScope());
            }
            return new ComfyImage(cat(images, 0));
        }
        finally
        {
            foreach (var t in images) t.Dispose();
        }
    }

    private ComfyLatent VaeEncode(ComfyNode node)
    {
        var image = In<ComfyImage>(node, "pixels");
        var model = In<ComfyModelRef>(node, "vae");
        var pipe = _host.Pipeline(model.Checkpoint);
        int f = pipe.VaeScaleFactor;
        using var scope = NewDisposeScope();
        var x = image.Pixels;
        // comfy VAEEncode: crop to a multiple of 8 (the VAE factor), centred.
        long h = x.shape[2] / f * f, w = x.shape[3] / f * f;
        if (h == 0 || w == 0) throw new ArgumentException($"image {x.shape[3]}x{x.shape[2]} is smaller than the VAE factor {f}");
        long oy = (x.shape[2] % f) / 2, ox = (x.shape[3] % f) / 2;
        if (h != x.shape[2] || w != x.shape[3]) x = x[.., .., (int)oy..(int)(oy + h), (int)ox..(int)(ox + w)];
        var z = pipe.EncodeImage(x.to(pipe.Device)).cpu();
        return ComfyLatent.FromSamples(z.MoveToOuterDisposeScope(), f, model.Checkpoint);
    }

    private object[] LoadImage(ComfyNode node)
    {
        var img = _host.LoadInputImage(Str(node, "image"));
        return [new ComfyImage(img.ToTensor()), new ComfyMask(img.Width, img.Height)];
    }

    private object[] Save(ComfyNode node, string prefix, string type)
    {
        var image = In<ComfyImage>(node, "images");
        var saved = new JsonArray();
        var text = new Dictionary<string, string> { ["prompt"] = _graph.Source.ToJsonString() };
        for (int i = 0; i < image.Batch; i++)
        {
            _ct.ThrowIfCancellationRequested();
            var rgb = RgbImage.FromDecoderOutput(image.Pixels[i]);
            saved.Add(_host.SaveImage(rgb, prefix, type, text).ToJson());
        }
        var output = new JsonObject { ["images"] = saved };
        _ui[node.Id] = output;
        _events.Executed(node.Id, (JsonObject)output.DeepClone());
        return [];
    }

    /// <summary>
    /// Our node: the cascade's later stages from a clean base latent to width×height (stage r re-noised with seed + r,
    /// as <see cref="CascadeGenerator"/>), so KSampler(seed s) + SelfCascade(seed s) is our whole cascade.
    /// </summary>
    private ComfyLatent SelfCascadeUpscale(ComfyNode node)
    {
        var (pipe, checkpoint) = Model(node);
        using var loras = SamplerLoras(node, pipe);
        var latent = In<ComfyLatent>(node, "samples");
        if (latent.IsEmpty) throw new ArgumentException("samples must be a sampled latent (e.g. from KSampler), not an empty one");
        var choice = ComfySamplers.Resolve(Str(node, "sampler_name"), Str(node, "scheduler"), out var why) ?? throw new ArgumentException(why);
        double cfg = Float(node, "cfg"), strength = Float(node, "pivot_strength");
        ulong seed = Seed(node);
        var upsamplers = Str(node, "upsamplers");
        var injector = upsamplers == ComfyNodeCatalog.NoUpsamplers ? null : _host.CreateUpsamplers(upsamplers, pipe);
        using var injectorLifetime = injector as IDisposable;
        var request = new CascadeRequest
        {
            Request = new GenerationRequest(In<ComfyConditioning>(node, "positive").Text)
            {
                NegativePrompt = In<ComfyConditioning>(node, "negative").Text, Steps = Int(node, "steps"), Guidance = cfg,
                Width = Int(node, "width"), Height = Int(node, "height"), NumImages = latent.Batch,
                Seed = unchecked((long)seed),
            },
            BaseSize = new PixelSize(latent.Width, latent.Height),
            PivotStrength = strength > 0 ? strength : null,
            Injector = injector,
        };
        var plan = CascadeGenerator.Plan(pipe, request.Request.Width, request.Request.Height, request);
        if (plan.Base.Width != latent.Width || plan.Base.Height != latent.Height)
            throw new ArgumentException($"the plan's base size {plan.Base.Width}x{plan.Base.Height} differs from the latent's {latent.Width}x{latent.Height}");
        int count = plan.Stages.Count;
        int totalSteps = plan.Stages.Skip(1).Sum(s => s.DenoisingSteps), before = 0;
        using var mode = inference_mode();
        using var swap = SchedulerSwap.Use(pipe, choice);
        using var emb = pipe.EncodePrompt(request.Request.Prompt, request.Request.NegativePrompt, cfg > 1.0);
        var current = latent.SamplesFor(pipe).to(pipe.Device);
        try
        {
            for (int i = 1; i < count; i++)
            {
                _ct.ThrowIfCancellationRequested();
                int offset = before;
                var progress = ProgressOf(node, p => (offset + p.Step, totalSteps));
                var next = CascadeGenerator.RunStage(pipe, request, current, plan.Stages[i - 1].Size, plan.Stages[i], emb,
                    unchecked((long)(seed + (ulong)i)), progress, _ct, count);
                current.Dispose();
                current = next;
                before += plan.Stages[i].DenoisingSteps;
            }
            return ComfyLatent.FromSamples(current, pipe.VaeScaleFactor, checkpoint);
        }
        catch
        {
            current.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var outs in _outputs.Values)
            foreach (var o in outs)
                (o as IDisposable)?.Dispose();
    }

    /// <summary>An IProgress that reports on the calling thread (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
    private sealed class SyncProgress(Action<GenerationProgress> report) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => report(value);
    }

    internal static string Invariant(double d) => d.ToString(CultureInfo.InvariantCulture);
}
