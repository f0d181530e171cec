using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using SelfCascade.Runtime;

namespace SelfCascade.Cli.Commands;

/// <summary>`selfcascade generate`: text to image(s), written as PNG with the parameters in the PNG text.</summary>
public static class GenerateCommand
{
    public static readonly string[] Methods = ["direct", "attn-scale", "upscale-only", "self-cascade"];

    public static Command Create(CliConsole console)
    {
        var model = ModelOption.Create();
        var prompt = new Option<string>("--prompt") { Description = "What to draw", Required = true };
        var negative = new Option<string?>("--negative-prompt") { Description = "What to steer away from" };
        var seed = new Option<long>("--seed") { Description = "Random seed (noise drawn on a CPU generator, as diffusers)", DefaultValueFactory = _ => 0 };
        var steps = new Option<int?>("--steps") { Description = "Denoising steps (default: the model's, 50 for SD)" };
        var guidance = new Option<double?>("--guidance") { Description = "Classifier-free guidance scale (default 7.5; SDXL 5.0)" };
        var size = new Option<string?>("--size") { Description = "WIDTHxHEIGHT in pixels (default: the model's native size)" };
        var method = new Option<string?>("--method")
        {
            Description = "direct (sample at the size), attn-scale (direct with attention-entropy scaling), upscale-only (base image resized), self-cascade (default above the native size)",
        };
        method.AcceptOnlyFromAmong(Methods);
        var cascade = new CascadeOptions();
        var lora = new LoraOptions();
        var scheduler = new Option<string?>("--scheduler") { Description = "ddim, pndm, euler, euler-a, dpm++2m, dpm++2m-karras, lms, unipc, ddpm (default: the folder's)" };
        var numImages = new Option<int>("--num-images") { Description = "Images for the prompt", DefaultValueFactory = _ => 1 };
        var device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N", DefaultValueFactory = _ => "cpu" };
        var dtype = new Option<string?>("--dtype") { Description = "fp32, fp16 or bf16 (default: fp16 on CUDA, fp32 on CPU; a force_upcast VAE stays fp32 under fp16)" };
        dtype.AcceptOnlyFromAmong("fp32", "fp16", "bf16");
        var offload = new Option<string>("--offload")
        {
            Description = "Memory mode for small GPUs: none, model (each component on the GPU only while it runs) or sequential (layer by layer)",
            DefaultValueFactory = _ => "none",
        };
        offload.AcceptOnlyFromAmong("none", "model", "sequential");
        var devices = new Option<string?>("--devices")
        {
            Description = "Several devices, e.g. cuda:0,cuda:1: one pipeline each, --num-images split across them, images in order; image i uses seed + i",
        };
        var output = new Option<string>("--out") { Description = "Output PNG (several images: NAME-0.png, NAME-1.png, ...)", Required = true };
        var json = new Option<bool>("--json") { Description = "Print a JSON summary (files, seed, timings per phase)" };
        var cmd = new Command("generate", "Generate images from a prompt")
        {
            model, prompt, negative, seed, steps, guidance, size, method, scheduler, numImages, device, devices, dtype, offload, output, json,
        };
        cascade.AddTo(cmd);
        var hub = new HubCliOptions();
        hub.AddTo(cmd);
        var singleFile = new SingleFileCliOptions();
        singleFile.AddTo(cmd);
        lora.AddTo(cmd);
        cmd.SetAction(p => console.Guard(p.GetValue(CliApp.LibTorchOption), () =>
        {
            var total = Stopwatch.StartNew();
            var promptText = p.GetValue(prompt)!;
            if (string.IsNullOrWhiteSpace(promptText)) throw new ArgumentException("the prompt is empty");
            var outPath = p.GetValue(output)!;
            if (!outPath.EndsWith(".png", StringComparison.OrdinalIgnoreCase)) throw new ArgumentException($"--out '{outPath}' must end in .png");
            int width = 0, height = 0;
            if (p.GetValue(size) is string s) (width, height) = CliParsing.ParseSize(s);
            var request = new GenerationRequest(promptText)
            {
                NegativePrompt = p.GetValue(negative), Seed = p.GetValue(seed), Steps = p.GetValue(steps) ?? 1,
                Guidance = p.GetValue(guidance), Width = width, Height = height, NumImages = p.GetValue(numImages),
            };
            StableDiffusionPipeline.ValidateRequest(request);
            var settings = cascade.Read(p);
            var modelDir = hub.Resolve(p, model, console);
            if (p.GetValue(devices) is string deviceList)
                return GenerateOnDevices(console, deviceList, modelDir, request, settings, p.GetValue(method), p.GetValue(steps) is null,
                    name => new PipelineOptions
                    {
                        Device = name, DType = p.GetValue(dtype) is string dt ? TorchRuntime.ParseDType(dt) : null,
                        Offload = CliParsing.ParseOffload(p.GetValue(offload)), Scheduler = p.GetValue(scheduler),
                        Variant = p.GetValue(hub.Variant), ConfigDir = singleFile.Read(p).ConfigDir, PredictionType = singleFile.Read(p).PredictionType,
                    },
                    pipe => lora.Apply(p, pipe), outPath);
            var load = Stopwatch.StartNew();
            using var pipe = StableDiffusionPipeline.FromPretrained(modelDir, new PipelineOptions
            {
                Device = p.GetValue(device)!, DType = p.GetValue(dtype) is string dt ? TorchRuntime.ParseDType(dt) : null, Offload = CliParsing.ParseOffload(p.GetValue(offload)), Scheduler = p.GetValue(scheduler),
                Variant = p.GetValue(hub.Variant),
                ConfigDir = singleFile.Read(p).ConfigDir, PredictionType = singleFile.Read(p).PredictionType,
            });
            using var loras = lora.Apply(p, pipe);
            double loadSeconds = load.Elapsed.TotalSeconds;
            if (p.GetValue(steps) is null)
                request = new GenerationRequest(promptText)
                {
                    NegativePrompt = request.NegativePrompt, Seed = request.Seed, Steps = pipe.DefaultSteps, Guidance = request.Guidance,
                    Width = width, Height = height, NumImages = request.NumImages,
                };
            int w = width > 0 ? width : pipe.NativeSize, h = height > 0 ? height : pipe.NativeSize;
            var methodName = p.GetValue(method) ?? (w > pipe.NativeSize || h > pipe.NativeSize ? "self-cascade" : "direct");
            using var injector = settings.CreateInjector(pipe);
            var cascadeRequest = settings.ToRequest(request, ParseMethod(methodName), pipe, injector);
            var progress = console.Progress<GenerationProgress>(g =>
                (((double)g.Stage + (double)g.Step / Math.Max(1, g.TotalSteps)) / g.StageCount, g.ToString()));
            using var result = CascadeGenerator.Generate(pipe, cascadeRequest, progress, console.Cancellation);
            var files = OutputNames(outPath, result.Images.Count);
            var meta = Metadata(request, pipe, result.Width, result.Height, p.GetValue(model) ?? modelDir, methodName);
            if (cascadeRequest.Method == GenerationMethod.SelfCascade)
            {
                meta["stages"] = string.Join(" -> ", result.Stages.Select(st => $"{st.Width}x{st.Height}"));
                meta["pivot_strength"] = (cascadeRequest.PivotStrength ?? pipe.DefaultPivotStrength).ToString(CultureInfo.InvariantCulture);
            }
            var stageFiles = settings.SaveStagesDir is string stagesDir ? StageFileNames(stagesDir, result) : [];
            ImageOutput.WriteAll([.. result.Images, .. result.StageImages], [.. files, .. stageFiles], meta, console.Cancellation);
            if (p.GetValue(json))
            {
                var timings = new Dictionary<string, double> { ["load"] = loadSeconds };
                foreach (var (k, v) in result.Timings) timings[k] = v;
                timings["total"] = total.Elapsed.TotalSeconds;
                console.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    files = files.Select(Path.GetFullPath), stage_files = stageFiles.Select(Path.GetFullPath), seed = request.Seed,
                    width = result.Width, height = result.Height, steps = request.Steps, guidance = request.Guidance ?? pipe.DefaultGuidance,
                    scheduler = pipe.Scheduler.ClassName, method = methodName, family = SelfCascade.IO.DiffusersModelFolder.FamilyName(pipe.Family),
                    stages = result.Stages.Select(st => new { index = st.Index, width = st.Width, height = st.Height, steps = st.Steps, strength = st.Strength, guidance = st.Guidance, seconds = st.Seconds }),
                    timings,
                }, CliConsole.Json));
            }
            else foreach (var f in files) console.Out.WriteLine(f);
            return 0;
        }));
        return cmd;
    }

    /// <summary>--devices: one pipeline per device, the images split across them (MultiDeviceGeneration).</summary>
    private static int GenerateOnDevices(CliConsole console, string deviceList, string modelDir, GenerationRequest request,
        CascadeOptions.Settings settings, string? method, bool defaultSteps, Func<string, PipelineOptions> optionsFor,
        Func<StableDiffusionPipeline, IDisposable> applyLoras, string outPath)
    {
        var names = deviceList.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (names.Length == 0) throw new ArgumentException("--devices names no device");
        if (settings.UpsamplerDirs.Length > 0) throw new ArgumentException("--upsamplers is not supported with --devices yet");
        var pipes = new List<StableDiffusionPipeline>();
        var loras = new List<IDisposable>();
        try
        {
            foreach (var name in names)
            {
                pipes.Add(StableDiffusionPipeline.FromPretrained(modelDir, optionsFor(name)));
                loras.Add(applyLoras(pipes[^1]));
            }
            var first = pipes[0];
            if (defaultSteps)
                request = new GenerationRequest(request.Prompt)
                {
                    NegativePrompt = request.NegativePrompt, Seed = request.Seed, Steps = first.DefaultSteps, Guidance = request.Guidance,
                    Width = request.Width, Height = request.Height, NumImages = request.NumImages,
                };
            int w = request.Width > 0 ? request.Width : first.NativeSize, h = request.Height > 0 ? request.Height : first.NativeSize;
            var methodName = method ?? (w > first.NativeSize || h > first.NativeSize ? "self-cascade" : "direct");
            var images = MultiDeviceGeneration.Generate(pipes, request,
                (pipe, r) => settings.ToRequest(r, ParseMethod(methodName), pipe), console.Cancellation);
            var files = OutputNames(outPath, images.Count);
            var meta = Metadata(request, first, w, h, modelDir, methodName);
            meta["devices"] = string.Join(",", names);
            meta["seed"] = $"{request.Seed} + image index";
            ImageOutput.WriteAll(images, files, meta, console.Cancellation);
            foreach (var f in files) console.Out.WriteLine(f);
            return 0;
        }
        finally
        {
            for (int i = loras.Count - 1; i >= 0; i--) loras[i].Dispose();
            foreach (var pipe in pipes) pipe.Dispose();
        }
    }

    public static GenerationMethod ParseMethod(string name) => name switch
    {
        "direct" => GenerationMethod.Direct,
        "attn-scale" => GenerationMethod.AttnScale,
        "upscale-only" => GenerationMethod.UpscaleOnly,
        "self-cascade" => GenerationMethod.SelfCascade,
        _ => throw new ArgumentException($"unknown method '{name}'; valid: {string.Join(", ", Methods)}"),
    };

    /// <summary>Stage images (all but the final): DIR/stage{r}_{W}x{H}[-{i}].png.</summary>
    private static List<string> StageFileNames(string dir, CascadeResult result)
    {
        var names = new List<string>();
        int perStage = result.Images.Count;
        for (int k = 0; k < result.StageImages.Count; k++)
        {
            var st = result.Stages[k / perStage];
            var suffix = perStage > 1 ? $"-{k % perStage}" : "";
            names.Add(Path.Combine(dir, $"stage{st.Index}_{st.Width}x{st.Height}{suffix}.png"));
        }
        return names;
    }

    public static List<string> OutputNames(string outPath, int count)
    {
        if (count == 1) return [outPath];
        var stem = outPath[..^4];
        return Enumerable.Range(0, count).Select(i => $"{stem}-{i}.png").ToList();
    }

    /// <summary>Generation parameters for the PNG text chunks (and an A1111-style `parameters` line): <see cref="GenerationMetadata"/>.</summary>
    public static Dictionary<string, string> Metadata(GenerationRequest r, StableDiffusionPipeline pipe, int width, int height, string model, string method) =>
        GenerationMetadata.For(r, pipe, width, height, model, method);
}
