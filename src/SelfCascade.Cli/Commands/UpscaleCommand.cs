using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using SelfCascade.Runtime;

namespace SelfCascade.Cli.Commands;

/// <summary>`selfcascade upscale --model DIR --image IN.png --scale 2|4`: the image becomes the cascade's pivot.</summary>
public static class UpscaleCommand
{
    public static Command Create(CliConsole console)
    {
        var model = ModelOption.Create();
        var image = new Option<string>("--image") { Description = "Input image (PNG, JPEG, WebP)", Required = true };
        var scale = new Option<int>("--scale") { Description = "2 or 4 per side", DefaultValueFactory = _ => 2 };
        scale.AcceptOnlyFromAmong("2", "4");
        var prompt = new Option<string>("--prompt") { Description = "What the image shows (helps the re-denoising)", DefaultValueFactory = _ => "" };
        var negative = new Option<string?>("--negative-prompt") { Description = "What to steer away from" };
        var seed = new Option<long>("--seed") { Description = "Random seed (stage r uses seed + r)", DefaultValueFactory = _ => 0 };
        var steps = new Option<int>("--steps") { Description = "Steps per stage (each runs steps x strength)", DefaultValueFactory = _ => 50 };
        var guidance = new Option<double?>("--guidance") { Description = "Guidance scale (default 7.5; SDXL 5.0)" };
        var scheduler = new Option<string?>("--scheduler") { Description = "Scheduler name (default: the folder's)" };
        var device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N", DefaultValueFactory = _ => "cpu" };
        var dtype = new Option<string?>("--dtype") { Description = "fp32, fp16 or bf16 (default: fp16 on CUDA, fp32 on CPU; a force_upcast VAE stays fp32 under fp16)" };
        dtype.AcceptOnlyFromAmong("fp32", "fp16", "bf16");
        var offload = new Option<string>("--offload")
        {
            Description = "Memory mode for small GPUs: none, model (each component on the GPU only while it runs) or sequential (layer by layer)",
            DefaultValueFactory = _ => "none",
        };
        offload.AcceptOnlyFromAmong("none", "model", "sequential");
        var output = new Option<string>("--out") { Description = "Output PNG", Required = true };
        var json = new Option<bool>("--json") { Description = "Print a JSON summary" };
        var cascade = new CascadeOptions();
        var lora = new LoraOptions();
        var cmd = new Command("upscale", "Upscale an existing image 2x or 4x per side with the same cascade machinery")
        {
            model, image, scale, prompt, negative, seed, steps, guidance, scheduler, device, dtype, offload, output, json,
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
            var outPath = p.GetValue(output)!;
            if (!outPath.EndsWith(".png", StringComparison.OrdinalIgnoreCase)) throw new ArgumentException($"--out '{outPath}' must end in .png");
            var input = RgbImage.Load(p.GetValue(image)!);
            var request = new GenerationRequest(p.GetValue(prompt) ?? "")
            {
                NegativePrompt = p.GetValue(negative), Seed = p.GetValue(seed), Steps = p.GetValue(steps), Guidance = p.GetValue(guidance),
            };
            StableDiffusionPipeline.ValidateRequest(request);
            var settings = cascade.Read(p);
            using var pipe = StableDiffusionPipeline.FromPretrained(hub.Resolve(p, model, console), new PipelineOptions
            {
                Device = p.GetValue(device)!, DType = p.GetValue(dtype) is string dt ? TorchRuntime.ParseDType(dt) : null, Offload = CliParsing.ParseOffload(p.GetValue(offload)), Scheduler = p.GetValue(scheduler),
                Variant = p.GetValue(hub.Variant),
                ConfigDir = singleFile.Read(p).ConfigDir, PredictionType = singleFile.Read(p).PredictionType,
            });
            using var loras = lora.Apply(p, pipe);
            var progress = console.Progress<GenerationProgress>(g =>
                (((double)g.Stage - 1 + (double)g.Step / Math.Max(1, g.TotalSteps)) / Math.Max(1, g.StageCount - 1), g.ToString()));
            using var injector = settings.CreateInjector(pipe);
            using var result = CascadeGenerator.Upscale(pipe, input, p.GetValue(scale), settings.ToRequest(request, GenerationMethod.SelfCascade, pipe, injector), progress, console.Cancellation);
            var meta = GenerateCommand.Metadata(request, pipe, result.Width, result.Height, p.GetValue(model) ?? ModelOption.Resolve(null), "upscale");
            meta["source_image"] = Path.GetFileName(p.GetValue(image)!);
            meta["scale"] = p.GetValue(scale).ToString(CultureInfo.InvariantCulture);
            ImageOutput.WriteAll(result.Images, [outPath], meta, console.Cancellation);
            if (p.GetValue(json))
                console.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    files = new[] { Path.GetFullPath(outPath) }, input = new { width = input.Width, height = input.Height },
                    width = result.Width, height = result.Height, seed = request.Seed,
                    stages = result.Stages.Select(st => new { index = st.Index, width = st.Width, height = st.Height, steps = st.Steps, seconds = st.Seconds }),
                    timings = result.Timings, total_seconds = total.Elapsed.TotalSeconds,
                }, CliConsole.Json));
            else console.Out.WriteLine(outPath);
            return 0;
        }));
        return cmd;
    }
}
