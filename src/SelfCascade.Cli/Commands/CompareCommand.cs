using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using SelfCascade.Runtime;

namespace SelfCascade.Cli.Commands;

/// <summary>`selfcascade compare`: the same prompt and seed through several methods, as one labelled grid.</summary>
public static class CompareCommand
{
    public static readonly string[] Choices = ["base", .. GenerateCommand.Methods];

    public static Command Create(CliConsole console)
    {
        var model = ModelOption.Create();
        var prompt = new Option<string>("--prompt") { Description = "What to draw", Required = true };
        var negative = new Option<string?>("--negative-prompt") { Description = "What to steer away from" };
        var size = new Option<string>("--size") { Description = "Target WIDTHxHEIGHT", Required = true };
        var methods = new Option<string>("--methods")
        {
            Description = $"Comma-separated, from: {string.Join(", ", Choices)} (base = the native-size sample)",
            DefaultValueFactory = _ => string.Join(",", Choices),
        };
        var seed = new Option<long>("--seed") { DefaultValueFactory = _ => 0, Description = "Random seed" };
        var steps = new Option<int?>("--steps") { Description = "Denoising steps (default: the model's, 50 for SD)" };
        var guidance = new Option<double?>("--guidance") { Description = "Guidance scale" };
        var device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N", DefaultValueFactory = _ => "cpu" };
        var output = new Option<string>("--out") { Description = "Output grid PNG", Required = true };
        var cascade = new CascadeOptions();
        var lora = new LoraOptions();
        var cmd = new Command("compare", "Run several methods on one prompt and seed and write a labelled side-by-side grid")
        {
            model, prompt, negative, size, methods, seed, steps, guidance, device, output,
        };
        cascade.AddTo(cmd);
        var hub = new HubCliOptions();
        hub.AddTo(cmd);
        var singleFile = new SingleFileCliOptions();
        singleFile.AddTo(cmd);
        lora.AddTo(cmd);
        cmd.SetAction(p => console.Guard(p.GetValue(CliApp.LibTorchOption), () =>
        {
            var outPath = p.GetValue(output)!;
            if (!outPath.EndsWith(".png", StringComparison.OrdinalIgnoreCase)) throw new ArgumentException($"--out '{outPath}' must end in .png");
            var (w, h) = CliParsing.ParseSize(p.GetValue(size)!);
            var chosen = p.GetValue(methods)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();
            foreach (var m in chosen)
                if (!Choices.Contains(m)) throw new ArgumentException($"unknown method '{m}'; valid: {string.Join(", ", Choices)}");
            if (chosen.Count == 0) throw new ArgumentException("--methods names no method");
            var settings = cascade.Read(p);
            using var pipe = StableDiffusionPipeline.FromPretrained(hub.Resolve(p, model, console), new PipelineOptions
            {
                Device = p.GetValue(device)!, Variant = p.GetValue(hub.Variant), ConfigDir = singleFile.Read(p).ConfigDir, PredictionType = singleFile.Read(p).PredictionType,
            });
            using var loras = lora.Apply(p, pipe);
            using var injector = settings.CreateInjector(pipe);
            var cells = new List<(RgbImage, string)>();
            var progress = console.Progress<GenerationProgress>(g => (((double)g.Stage + (double)g.Step / Math.Max(1, g.TotalSteps)) / g.StageCount, g.ToString()));
            foreach (var m in chosen)
            {
                console.Cancellation.ThrowIfCancellationRequested();
                bool isBase = m == "base";
                var request = new GenerationRequest(p.GetValue(prompt)!)
                {
                    NegativePrompt = p.GetValue(negative), Seed = p.GetValue(seed), Steps = p.GetValue(steps) ?? pipe.DefaultSteps, Guidance = p.GetValue(guidance),
                    Width = isBase ? 0 : w, Height = isBase ? 0 : h,
                };
                var sw = Stopwatch.StartNew();
                using var result = CascadeGenerator.Generate(pipe, settings.ToRequest(request,
                    isBase ? GenerationMethod.Direct : GenerateCommand.ParseMethod(m), pipe, injector), progress, console.Cancellation);
                var label = string.Create(CultureInfo.InvariantCulture, $"{m} {result.Width}x{result.Height} {sw.Elapsed.TotalSeconds:F1}s");
                cells.Add((result.Images[0], label));
                console.Error.WriteLineIfInteractive(console, "");
            }
            var grid = ImageGrid.Compose(cells);
            console.Cancellation.ThrowIfCancellationRequested();
            grid.SavePng(outPath, new Dictionary<string, string>
            {
                ["prompt"] = p.GetValue(prompt)!, ["seed"] = p.GetValue(seed).ToString(CultureInfo.InvariantCulture),
                ["methods"] = string.Join(",", chosen), ["size"] = $"{w}x{h}", ["software"] = "SelfCascade",
            });
            console.Out.WriteLine(outPath);
            return 0;
        }));
        return cmd;
    }

    private static void WriteLineIfInteractive(this TextWriter w, CliConsole console, string text)
    {
        if (console.Interactive) w.WriteLine(text);
    }
}
