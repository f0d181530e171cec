using System.CommandLine;
using System.Globalization;
using System.Text;
using SelfCascade.Evaluation;
using SelfCascade.Evaluation.PromptGrid;
using SelfCascade.IO;
using SelfCascade.Pipelines;

namespace SelfCascade.Cli.Commands;

/// <summary>
/// `selfcascade prompt-grid`: the model card's grid (prompts x seeds, each native and through the self-cascade) and
/// its report (the feature network's top-1 class per image, prompt-match accuracy native vs cascade with chance).
/// </summary>
public static class PromptGridCommand
{
    public static Command Create(CliConsole console)
    {
        var model = ModelOption.Create();
        var prompt = new Option<string[]>("--prompt") { Description = "A prompt (repeatable); one row of the grid each" };
        var promptsFile = new Option<string?>("--prompts-file") { Description = "File of prompts, one per line (blank lines ignored); after any --prompt" };
        var seeds = new Option<string>("--seeds") { Description = "Comma-separated seeds; each prompt is drawn once per seed", DefaultValueFactory = _ => "0,1" };
        var size = new Option<int>("--size") { Description = "Cascade target side in pixels (square)", DefaultValueFactory = _ => 128 };
        var steps = new Option<int>("--steps") { Description = "Denoising steps", DefaultValueFactory = _ => 25 };
        var guidance = new Option<double?>("--guidance") { Description = "Guidance scale (default: the model's)" };
        var pivot = new Option<double?>("--pivot-strength") { Description = "img2img strength of each later stage (default: the model's)" };
        var upsamplers = new Option<string?>("--upsamplers") { Description = "Trained feature-upsampler checkpoints, one per upscaling stage, comma-separated (the tuned cascade)" };
        var featureNet = new Option<string?>("--feature-net") { Description = "Feature network with class names (train-feature-net) for the report's top-1 classes and prompt match" };
        var output = new Option<string>("--out") { Description = "Grid PNG", Required = true };
        var report = new Option<string?>("--report") { Description = "Markdown report (default: printed to stdout)" };
        var sensitivity = new Option<bool>("--sensitivity") { Description = "Add a table of how much the predicted image depends on each prompt at t = 950..200 (does the model listen to its prompt where the composition is set?)" };
        var cmd = new Command("prompt-grid", "Model-card grid: each prompt and seed at the native size and through the self-cascade, with prompt-match accuracy")
        {
            model, prompt, promptsFile, seeds, size, steps, guidance, pivot, upsamplers, featureNet, output, report, sensitivity,
        };
        cmd.SetAction(p => console.Guard(p.GetValue(CliApp.LibTorchOption), () =>
        {
            var outPath = p.GetValue(output)!;
            if (!outPath.EndsWith(".png", StringComparison.OrdinalIgnoreCase)) throw new ArgumentException($"--out '{outPath}' must end in .png");
            var prompts = (p.GetValue(prompt) ?? []).ToList();
            if (p.GetValue(promptsFile) is string file)
            {
                if (!File.Exists(file)) throw new FileNotFoundException($"--prompts-file '{file}' not found", file);
                prompts.AddRange(File.ReadLines(file).Select(l => l.Trim()).Where(l => l.Length > 0));
            }
            if (prompts.Count == 0) throw new ArgumentException("no prompts: give --prompt (repeatable) or --prompts-file");
            var seedList = ParseSeeds(p.GetValue(seeds)!);
            var netPath = p.GetValue(featureNet);
            if (netPath is not null && !File.Exists(netPath)) throw new FileNotFoundException($"--feature-net '{netPath}' not found", netPath);
            var upsamplerDirs = (p.GetValue(upsamplers) ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            foreach (var d in upsamplerDirs)
                if (!Directory.Exists(d)) throw new DirectoryNotFoundException($"--upsamplers '{d}' not found");

            var modelArg = p.GetValue(model);
            var modelDir = ModelOption.Resolve(modelArg, console);
            using var pipe = StableDiffusionPipeline.FromPretrained(modelDir);
            using var injector = upsamplerDirs.Length == 0 ? null
                : SelfCascade.Cascade.Upsamplers.FeatureUpsamplerInjector.FromCheckpoints(upsamplerDirs, pipe.Unet, null, pipe.DType);
            // Load the judge before the long sampling, so a bad file fails at once.
            using var classifier = netPath is null ? null : new FeatureNetExtractor(FeatureNet.Load(netPath), ownsNet: true);
            if (classifier is not null && classifier.Net.ClassNames is null)
                throw new InvalidDataException($"{netPath}: the feature network has no class names (train it with `selfcascade train-feature-net`)");

            var options = new PromptGridOptions
            {
                Prompts = prompts, Seeds = seedList, Size = p.GetValue(size), Steps = p.GetValue(steps), Guidance = p.GetValue(guidance),
                PivotStrength = p.GetValue(pivot), Injector = injector,
            };
            var images = PromptGridRunner.Generate(pipe, options, new LineProgress(console), console.Cancellation);
            var scores = classifier is null ? null : PromptGridReport.Score(images, classifier);
            var modelName = Path.GetFileName(Path.GetFullPath(modelDir).TrimEnd('/'));
            var tuned = upsamplerDirs.Length > 0
                ? " with upsamplers " + string.Join(", ", upsamplerDirs.Select(d => Path.GetFileName(Path.GetFullPath(d).TrimEnd('/'))))
                : " (tuning-free)";
            var judge = scores is null ? "" : $" Classes: feature network `{Path.GetFileName(netPath)}` ({scores.ClassCount} classes).";
            var header = string.Create(CultureInfo.InvariantCulture,
                $"Model `{modelName}` (native {images.NativeSize} px): {prompts.Count} prompts x seeds {string.Join(",", seedList)}, native {images.NativeSize} px (the cascade's own base stage) and self-cascade to {images.Size} px{tuned}, {images.Steps} steps, guidance {images.Guidance}, pivot strength {images.PivotStrength}.{judge}");
            var markdown = PromptGridReport.Markdown(images, scores, header);
            if (p.GetValue(sensitivity))
            {
                var rows = ConditioningSensitivity.Measure(pipe, prompts, cancellationToken: console.Cancellation);
                markdown += "\n## Prompt sensitivity by noise level\n\n"
                    + "Mean |x̂0(prompt) − x̂0(\"\")| per element of the predicted clean sample (clamped to [-1, 1]), the same 4 unit-Gaussian x_t "
                    + "(seeds 1-4) for every prompt and timestep. Near zero at high t: the seed, not the prompt, decides the composition.\n\n"
                    + ConditioningSensitivity.Markdown(prompts, rows);
            }

            var grid = PromptGridRunner.Grid(images);
            console.Cancellation.ThrowIfCancellationRequested();
            ImageOutput.WriteAll([grid], [outPath], new Dictionary<string, string>
            {
                ["prompts"] = string.Join("\n", prompts), ["seeds"] = string.Join(",", seedList), ["size"] = $"{images.Size}x{images.Size}",
                ["steps"] = images.Steps.ToString(CultureInfo.InvariantCulture), ["guidance"] = images.Guidance.ToString(CultureInfo.InvariantCulture),
                ["model"] = modelArg ?? ModelOption.EmbeddedName, ["software"] = "SelfCascade",
            }, console.Cancellation);
            if (p.GetValue(report) is string reportPath)
            {
                AtomicFile.WriteAllBytes(reportPath, Encoding.UTF8.GetBytes(markdown));
                console.Out.WriteLine(outPath);
                console.Out.WriteLine(reportPath);
            }
            else
            {
                console.Out.WriteLine(outPath);
                console.Out.Write(markdown);
            }
            return 0;
        }));
        return cmd;
    }

    public static List<long> ParseSeeds(string text)
    {
        var seeds = new List<long>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!long.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) || s < 0)
                throw new ArgumentException($"--seeds: '{part}' is not a non-negative whole number");
            seeds.Add(s);
        }
        if (seeds.Count == 0) throw new ArgumentException("--seeds names no seed");
        return seeds;
    }

    /// <summary>Progress lines on stderr as each image is done (the run is on this thread).</summary>
    private sealed class LineProgress(CliConsole console) : IProgress<string>
    {
        public void Report(string value) => console.Error.WriteLine(value);
    }
}
