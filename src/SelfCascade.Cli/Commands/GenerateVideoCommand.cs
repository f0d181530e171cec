using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using SelfCascade.Cli.Video;
using SelfCascade.Pipelines;
using SelfCascade.Runtime;
using SelfCascade.Video.Cascade;
using SelfCascade.Video.Pipelines;

namespace SelfCascade.Cli.Commands;

/// <summary>
/// `selfcascade generate-video`: text to video with an AnimateDiff model (image model + motion adapter) or a
/// ModelScope-style TextToVideoSD folder (UNet3D) through the video cascade (<see cref="VideoCascadeGenerator"/>),
/// written as MP4 (ffmpeg), animated WebP or GIF, optionally with the PNG frames. Without --model it runs the embedded
/// emoji model with its embedded motion adapter.
/// </summary>
public static class GenerateVideoCommand
{
    /// <summary>The embedded motion adapter (models/ beside the program or in the checkout), used with the embedded model.</summary>
    public const string EmbeddedMotionName = "emoji-motion";

    public static Command Create(CliConsole console)
    {
        var model = ModelOption.Create();
        model.Description = "An image model for AnimateDiff (as for generate: folder, single file or hub id) or a diffusers TextToVideoSDPipeline "
            + $"folder / hub id (ModelScope-style UNet3D, no motion adapter); default: the embedded '{ModelOption.EmbeddedName}' model";
        var adapter = new Option<string?>("--motion-adapter")
        {
            Description = $"A diffusers MotionAdapter folder for AnimateDiff (default: the model folder's motion_adapter component; with no --model, the embedded '{EmbeddedMotionName}'); not for TextToVideoSD folders",
        };
        var prompt = new Option<string>("--prompt") { Description = "What to show, e.g. \"red heart, zooming in\"", Required = true };
        var negative = new Option<string?>("--negative-prompt") { Description = "What to steer away from" };
        var seed = new Option<long>("--seed") { Description = "Random seed (noise drawn on a CPU generator, as diffusers)", DefaultValueFactory = _ => 0 };
        var steps = new Option<int?>("--steps") { Description = "Denoising steps (default: the model's)" };
        var guidance = new Option<double?>("--guidance") { Description = "Classifier-free guidance scale (default: the model's)" };
        var size = new Option<string?>("--size") { Description = "WIDTHxHEIGHT in pixels (default: the model's native size)" };
        var frames = new Option<int>("--frames") { Description = "Frames (1 .. the motion adapter's maximum sequence length; UNet3D models: no fixed limit)", DefaultValueFactory = _ => 8 };
        var fps = new Option<double>("--fps") { Description = "Frames per second of the written video", DefaultValueFactory = _ => 8 };
        var method = new Option<string?>("--method") { Description = "direct, attn-scale, upscale-only, self-cascade (default above the native size)" };
        method.AcceptOnlyFromAmong(GenerateCommand.Methods);
        var cascade = new CascadeOptions();
        var scheduler = new Option<string?>("--scheduler") { Description = "ddim, pndm, euler, euler-a, dpm++2m, dpm++2m-karras, lms, unipc, ddpm (default: the folder's)" };
        var device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N", DefaultValueFactory = _ => "cpu" };
        var dtype = new Option<string?>("--dtype") { Description = "fp32, fp16 or bf16 (default: fp16 on CUDA, fp32 on CPU)" };
        dtype.AcceptOnlyFromAmong("fp32", "fp16", "bf16");
        var output = new Option<string>("--out") { Description = "Output video: .mp4 (H.264 through ffmpeg; .webp beside it when ffmpeg is missing), .webp (lossless) or .gif", Required = true };
        var saveFrames = new Option<string?>("--save-frames") { Description = "Folder for the frames as PNG (frame_000.png, ...), parameters in each" };
        var framesPerDecode = new Option<int>("--frames-per-decode") { Description = "Frames per VAE decode call (bounds memory)", DefaultValueFactory = _ => 8 };
        var json = new Option<bool>("--json") { Description = "Print a JSON summary (file, frames, seed, timings)" };
        var cmd = new Command("generate-video", "Generate a short video from a prompt (AnimateDiff motion adapter or a TextToVideoSD UNet3D model; the self-cascade above the native size)")
        {
            model, adapter, prompt, negative, seed, steps, guidance, size, frames, fps, method, scheduler, device, dtype, output, saveFrames, framesPerDecode, json,
        };
        cascade.AddTo(cmd);
        var hub = new HubCliOptions();
        hub.AddTo(cmd);
        cmd.SetAction(p => console.Guard(p.GetValue(CliApp.LibTorchOption), () =>
        {
            var total = Stopwatch.StartNew();
            // Everything that can be checked before loading a model is checked first: bad input writes nothing.
            var promptText = p.GetValue(prompt)!;
            if (string.IsNullOrWhiteSpace(promptText)) throw new ArgumentException("the prompt is empty");
            var outPath = p.GetValue(output)!;
            VideoOutput.CheckPath(outPath);
            int frameCount = p.GetValue(frames);
            if (frameCount < 1) throw new ArgumentException($"--frames must be at least 1 (got {frameCount})");
            double rate = p.GetValue(fps);
            if (!(rate > 0 && rate <= SelfCascade.Video.Output.VideoEncoding.MaxFps))
                throw new ArgumentException($"--fps {rate.ToString(CultureInfo.InvariantCulture)} must be in (0, {SelfCascade.Video.Output.VideoEncoding.MaxFps}]");
            int width = 0, height = 0;
            if (p.GetValue(size) is string s) (width, height) = CliParsing.ParseSize(s);
            var settings = cascade.Read(p);
            foreach (var dir in settings.UpsamplerDirs)
                if (!Directory.Exists(dir)) throw new ArgumentException($"--upsamplers '{dir}': folder not found");
            var ffmpeg = FfmpegMp4Writer.Find();
            var (_, note) = VideoOutput.Resolve(outPath, ffmpeg);
            if (note != null) console.Error.WriteLine("note: " + note);

            var (modelDir, adapterDir) = ResolveModel(p.GetValue(model), p.GetValue(adapter), hub, p, model, console);
            var load = Stopwatch.StartNew();
            using var pipe = VideoPipeline.FromPretrained(modelDir, adapterDir, new PipelineOptions
            {
                Device = p.GetValue(device)!, DType = p.GetValue(dtype) is string dt ? TorchRuntime.ParseDType(dt) : null,
                Scheduler = p.GetValue(scheduler), Variant = p.GetValue(hub.Variant),
            });
            double loadSeconds = load.Elapsed.TotalSeconds;
            int w = width > 0 ? width : pipe.NativeSize, h = height > 0 ? height : pipe.NativeSize;
            var methodName = p.GetValue(method) ?? (w > pipe.NativeSize || h > pipe.NativeSize ? "self-cascade" : "direct");
            // The image upsampler checkpoints, run per frame in the video UNet (the tuned cascade): their low-res branch
            // is AnimateDiff's image UNet or a UNet3D's spatial half.
            using var injector = settings.UpsamplerDirs.Length == 0 ? null : settings.CreateInjector(pipe.UpsamplerUNet, pipe.DType);
            var request = new VideoRequest
            {
                Prompt = promptText, NegativePrompt = p.GetValue(negative), Width = width, Height = height, Frames = frameCount,
                Seed = p.GetValue(seed), Steps = p.GetValue(steps) ?? pipe.DefaultSteps, Guidance = p.GetValue(guidance),
                Method = GenerateCommand.ParseMethod(methodName), BaseSize = settings.BaseSize, PivotStrength = settings.PivotStrength,
                StageOverrides = settings.Overrides, PivotMode = settings.PivotMode, VaeTiling = settings.Tiling,
                FramesPerDecode = p.GetValue(framesPerDecode), Upsamplers = injector,
            };
            VideoCascadeGenerator.Validate(pipe, request);
            var progress = console.Progress<GenerationProgress>(g =>
                (((double)g.Stage + (double)g.Step / Math.Max(1, g.TotalSteps)) / g.StageCount, g.ToString()));
            using var result = VideoCascadeGenerator.Generate(pipe, request, progress, console.Cancellation);
            var meta = Metadata(request, pipe, result.Width, result.Height, rate, p.GetValue(model) ?? modelDir, adapterDir, methodName);
            if (request.Method == GenerationMethod.SelfCascade)
            {
                meta["stages"] = string.Join(" -> ", result.Stages.Select(st => $"{st.Width}x{st.Height}"));
                meta["pivot_strength"] = (request.PivotStrength ?? pipe.DefaultPivotStrength).ToString(CultureInfo.InvariantCulture);
                if (settings.UpsamplerDirs.Length > 0)
                    meta["upsamplers"] = string.Join(",", settings.UpsamplerDirs.Select(d => Path.GetFileName(Path.GetFullPath(d).TrimEnd('/'))));
            }
            var written = VideoOutput.Write(outPath, result.Videos[0], rate, meta, p.GetValue(saveFrames), ffmpeg, console.Cancellation);
            if (p.GetValue(json))
            {
                var timings = new Dictionary<string, double> { ["load"] = loadSeconds };
                foreach (var (k, v) in result.Timings) timings[k] = v;
                timings["total"] = total.Elapsed.TotalSeconds;
                console.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    file = Path.GetFullPath(written), frames = result.Videos[0].Length, fps = rate, seed = request.Seed, width = result.Width,
                    height = result.Height, steps = request.Steps, method = methodName,
                    stages = result.Stages.Select(st => new { index = st.Index, width = st.Width, height = st.Height, steps = st.Steps, strength = st.Strength, seconds = st.Seconds }),
                    timings,
                }, CliConsole.Json));
            }
            else console.Out.WriteLine(written);
            return 0;
        }));
        return cmd;
    }

    /// <summary>
    /// The model and adapter folders: with no --model, the embedded emoji model and (unless --motion-adapter) the
    /// embedded motion adapter; with --model, the given adapter or null (the folder's own motion_adapter component).
    /// </summary>
    private static (string Model, string? Adapter) ResolveModel(string? model, string? adapter, HubCliOptions hub, ParseResult p,
        Option<string?> modelOption, CliConsole console)
    {
        var modelDir = hub.Resolve(p, modelOption, console);
        if (adapter != null)
        {
            if (!Directory.Exists(adapter)) throw new ArgumentException($"--motion-adapter '{adapter}': folder not found");
            return (modelDir, adapter);
        }
        if (model != null) return (modelDir, null);
        return (modelDir, EmbeddedMotionDir() ?? throw new ArgumentException(
            $"no --motion-adapter given and the embedded motion adapter 'models/{EmbeddedMotionName}' was not found beside the program or in the checkout"));
    }

    public static string? EmbeddedMotionDir()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "models", EmbeddedMotionName);
            if (File.Exists(Path.Combine(candidate, "config.json"))) return candidate;
        }
        return null;
    }

    /// <summary>Generation parameters for the video's metadata (and every saved frame's PNG text).</summary>
    public static Dictionary<string, string> Metadata(VideoRequest r, VideoPipeline pipe, int width, int height, double fps, string model,
        string? adapter, string method)
    {
        var inv = CultureInfo.InvariantCulture;
        var g = (r.Guidance ?? pipe.DefaultGuidance).ToString(inv);
        string Name(string path) => Path.GetFileName(Path.GetFullPath(path).TrimEnd('/'));
        var d = new Dictionary<string, string>
        {
            ["prompt"] = r.Prompt,
            ["negative_prompt"] = r.NegativePrompt ?? "",
            ["seed"] = r.Seed.ToString(inv),
            ["steps"] = r.Steps.ToString(inv),
            ["guidance"] = g,
            ["size"] = $"{width}x{height}",
            ["frames"] = r.Frames.ToString(inv),
            ["fps"] = fps.ToString(inv),
            ["scheduler"] = pipe.Scheduler.ClassName,
            ["method"] = method,
            ["model"] = Name(model),
            ["video_model"] = pipe.Kind,
            ["motion_adapter"] = pipe.TextToVideo is not null ? "(none: UNet3D temporal layers)" : adapter is null ? "(the model's motion_adapter)" : Name(adapter),
            ["software"] = "SelfCascade",
        };
        d["parameters"] = $"{r.Prompt}\nNegative prompt: {r.NegativePrompt ?? ""}\nSteps: {r.Steps}, Sampler: {pipe.Scheduler.ClassName}, CFG scale: {g}, " +
                          $"Seed: {r.Seed}, Size: {width}x{height}, Frames: {r.Frames}, FPS: {fps.ToString(inv)}, Method: {method}";
        return d;
    }
}
