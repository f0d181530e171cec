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
    public static readonly string[] Methods = ["direct"];

    public static Command Create(CliConsole console)
    {
        var model = new Option<string>("--model") { Description = "A diffusers Stable Diffusion folder", Required = true };
        var prompt = new Option<string>("--prompt") { Description = "What to draw", Required = true };
        var negative = new Option<string?>("--negative-prompt") { Description = "What to steer away from" };
        var seed = new Option<long>("--seed") { Description = "Random seed (noise drawn on a CPU generator, as diffusers)", DefaultValueFactory = _ => 0 };
        var steps = new Option<int>("--steps") { Description = "Denoising steps", DefaultValueFactory = _ => 50 };
        var guidance = new Option<double?>("--guidance") { Description = "Classifier-free guidance scale (default 7.5; SDXL 5.0)" };
        var size = new Option<string?>("--size") { Description = "WIDTHxHEIGHT in pixels (default: the model's native size)" };
        var method = new Option<string>("--method") { Description = "direct: sample at the requested size", DefaultValueFactory = _ => "direct" };
        method.AcceptOnlyFromAmong(Methods);
        var scheduler = new Option<string?>("--scheduler") { Description = "ddim, pndm, euler, euler-a, dpm++2m, dpm++2m-karras, lms, unipc, ddpm (default: the folder's)" };
        var numImages = new Option<int>("--num-images") { Description = "Images for the prompt", DefaultValueFactory = _ => 1 };
        var device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N", DefaultValueFactory = _ => "cpu" };
        var dtype = new Option<string>("--dtype") { Description = "fp32, fp16 or bf16", DefaultValueFactory = _ => "fp32" };
        dtype.AcceptOnlyFromAmong("fp32", "fp16", "bf16");
        var output = new Option<string>("--out") { Description = "Output PNG (several images: NAME-0.png, NAME-1.png, ...)", Required = true };
        var json = new Option<bool>("--json") { Description = "Print a JSON summary (files, seed, timings per phase)" };
        var cmd = new Command("generate", "Generate images from a prompt")
        {
            model, prompt, negative, seed, steps, guidance, size, method, scheduler, numImages, device, dtype, output, json,
        };
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
                NegativePrompt = p.GetValue(negative), Seed = p.GetValue(seed), Steps = p.GetValue(steps),
                Guidance = p.GetValue(guidance), Width = width, Height = height, NumImages = p.GetValue(numImages),
            };
            StableDiffusionPipeline.ValidateRequest(request);
            var load = Stopwatch.StartNew();
            using var pipe = StableDiffusionPipeline.FromPretrained(p.GetValue(model)!, new PipelineOptions
            {
                Device = p.GetValue(device)!, DType = TorchRuntime.ParseDType(p.GetValue(dtype)), Scheduler = p.GetValue(scheduler),
            });
            double loadSeconds = load.Elapsed.TotalSeconds;
            var progress = console.Progress<GenerationProgress>(g =>
                ((double)g.Step / Math.Max(1, g.TotalSteps), g.ToString()));
            using var result = pipe.Generate(request, progress, console.Cancellation);
            var files = OutputNames(outPath, result.Images.Count);
            var meta = Metadata(request, pipe, result, p.GetValue(model)!, p.GetValue(method)!);
            WriteAll(result.Images, files, meta);
            if (p.GetValue(json))
            {
                var timings = new Dictionary<string, double> { ["load"] = loadSeconds };
                foreach (var (k, v) in result.Timings) timings[k] = v;
                timings["total"] = total.Elapsed.TotalSeconds;
                console.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    files = files.Select(Path.GetFullPath), seed = request.Seed, width = result.Width, height = result.Height,
                    steps = request.Steps, guidance = request.Guidance ?? pipe.DefaultGuidance, scheduler = pipe.Scheduler.ClassName,
                    method = p.GetValue(method), family = SelfCascade.IO.DiffusersModelFolder.FamilyName(pipe.Family), timings,
                }, CliConsole.Json));
            }
            else foreach (var f in files) console.Out.WriteLine(f);
            return 0;
        }));
        return cmd;
    }

    public static List<string> OutputNames(string outPath, int count)
    {
        if (count == 1) return [outPath];
        var stem = outPath[..^4];
        return Enumerable.Range(0, count).Select(i => $"{stem}-{i}.png").ToList();
    }

    /// <summary>Generation parameters for the PNG text chunks (and an A1111-style `parameters` line).</summary>
    public static Dictionary<string, string> Metadata(GenerationRequest r, StableDiffusionPipeline pipe, GenerationResult result, string model, string method)
    {
        var inv = CultureInfo.InvariantCulture;
        var g = (r.Guidance ?? pipe.DefaultGuidance).ToString(inv);
        var d = new Dictionary<string, string>
        {
            ["prompt"] = r.Prompt,
            ["negative_prompt"] = r.NegativePrompt ?? "",
            ["seed"] = r.Seed.ToString(inv),
            ["steps"] = r.Steps.ToString(inv),
            ["guidance"] = g,
            ["size"] = $"{result.Width}x{result.Height}",
            ["scheduler"] = pipe.Scheduler.ClassName,
            ["method"] = method,
            ["model"] = Path.GetFileName(Path.GetFullPath(model).TrimEnd('/')),
            ["software"] = "SelfCascade",
        };
        d["parameters"] = $"{r.Prompt}\nNegative prompt: {r.NegativePrompt ?? ""}\nSteps: {r.Steps}, Sampler: {pipe.Scheduler.ClassName}, CFG scale: {g}, Seed: {r.Seed}, Size: {result.Width}x{result.Height}, Method: {method}";
        return d;
    }

    /// <summary>Writes every image (each atomically); if one fails, the ones already written are removed.</summary>
    public static void WriteAll(IReadOnlyList<RgbImage> images, IReadOnlyList<string> files, IReadOnlyDictionary<string, string> meta)
    {
        var written = new List<string>();
        try
        {
            for (int i = 0; i < images.Count; i++)
            {
                var m = new Dictionary<string, string>(meta);
                if (images.Count > 1) m["image_index"] = i.ToString(CultureInfo.InvariantCulture);
                images[i].SavePng(files[i], m);
                written.Add(files[i]);
            }
        }
        catch
        {
            foreach (var f in written) File.Delete(f);
            throw;
        }
    }
}
