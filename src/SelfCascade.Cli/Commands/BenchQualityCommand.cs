using System.CommandLine;
using System.Globalization;
using SelfCascade.Evaluation;
using SelfCascade.Pipelines;

namespace SelfCascade.Cli.Commands;

/// <summary>`selfcascade bench-quality`: the paper's comparison on the emoji data (table, grid, fidelity plot).</summary>
public static class BenchQualityCommand
{
    public static Command Create(CliConsole console)
    {
        var model = ModelOption.Create();
        var data = new Option<string>("--data") { Description = "Dataset folder from `selfcascade data` (manifest.json, render/)", Required = true };
        var prompts = new Option<int>("--prompts") { Description = "Prompts from the split (seed = index)", DefaultValueFactory = _ => 24 };
        var split = new Option<string>("--split")
        {
            Description = "Where prompts and real renders come from: test (designs the base model never saw; the first N by id) or train (concepts it learned at its native size; N spread over the split, one per caption; the prompt list is written to OUT.prompts.txt for train-upsamplers --exclude-captions)",
            DefaultValueFactory = _ => "test",
        };
        split.AcceptOnlyFromAmong("train", "test");
        var promptsOnly = new Option<bool>("--prompts-only") { Description = "Only write OUT.prompts.txt (the prompt list) and stop: no model is loaded" };
        var scales = new Option<string>("--scales") { Description = "Per-side scales", DefaultValueFactory = _ => "2,4" };
        var steps = new Option<int>("--steps") { Description = "Denoising steps", DefaultValueFactory = _ => 25 };
        var guidance = new Option<double?>("--guidance") { Description = "Guidance scale (default: the model's)" };
        var methods = new Option<string>("--methods") { Description = "Tuning-free methods", DefaultValueFactory = _ => "direct,attn-scale,upscale-only,self-cascade" };
        var lite = new Option<string?>("--upsamplers-lite") { Description = "lite upsampler checkpoints per stage (comma-separated)" };
        var liteSteps = new Option<long>("--lite-steps") { Description = "Training steps of the lite sets (for the plot)", DefaultValueFactory = _ => 0 };
        var full = new Option<string?>("--upsamplers-full") { Description = "full upsampler checkpoints per stage (comma-separated)" };
        var fullSteps = new Option<long>("--full-steps") { Description = "Training steps of the full sets (for the plot)", DefaultValueFactory = _ => 0 };
        var fineTuned = new Option<string[]>("--finetuned") { Description = "A fine-tuned model as NAME=DIR@STEPS (repeatable); evaluated at its own size" };
        var featureNet = new Option<string>("--feature-net") { Description = "Feature network file (trained on the renders when missing)", DefaultValueFactory = _ => "feature-net.safetensors" };
        var epochs = new Option<int>("--feature-epochs") { Description = "Epochs when the feature network is trained", DefaultValueFactory = _ => 8 };
        var output = new Option<string>("--out") { Description = "Markdown table output", DefaultValueFactory = _ => "quality.md" };
        var grid = new Option<string?>("--grid") { Description = "Comparison grid PNG (largest scale)" };
        var plot = new Option<string?>("--plot") { Description = "Fidelity-vs-training-steps plot PNG (smallest scale)" };
        var images = new Option<string?>("--images") { Description = "Keep every generated image here and reuse the ones already there (resume; recompute metrics without sampling)" };
        var bootstrap = new Option<int>("--bootstrap") { Description = "Bootstrap resamples for the 95 % intervals (0 = none)", DefaultValueFactory = _ => 1000 };
        var directMax = new Option<int>("--direct-max-scale") { Description = "Largest scale for direct and attn-scale sampling (the cascades run at every scale)", DefaultValueFactory = _ => 4 };
        var cmd = new Command("bench-quality", "Measure repetition, base consistency, FD/KID (whole and patches), detail and cost per method and scale")
        {
            model, data, split, prompts, promptsOnly, scales, steps, guidance, methods, lite, liteSteps, full, fullSteps, fineTuned, featureNet, epochs, output, grid, plot, images, directMax, bootstrap,
        };
        cmd.SetAction(p => console.Guard(p.GetValue(CliApp.LibTorchOption), () =>
        {
            var fts = (p.GetValue(fineTuned) ?? []).Select(ParseFineTuned).ToList();
            var options = new QualityRunOptions
            {
                DataDir = p.GetValue(data)!, Split = p.GetValue(split) == "train" ? Data.Split.Train : Data.Split.Test, Prompts = p.GetValue(prompts), Steps = p.GetValue(steps), Guidance = p.GetValue(guidance),
                Scales = Split(p.GetValue(scales)!).Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToList(),
                Methods = Split(p.GetValue(methods)!), UpsamplersLite = Split(p.GetValue(lite)), UpsamplersFull = Split(p.GetValue(full)),
                FineTuned = fts, FeatureNetPath = p.GetValue(featureNet)!, FeatureNetEpochs = p.GetValue(epochs),
                ImagesDir = p.GetValue(images), DirectMaxScale = p.GetValue(directMax),
                BootstrapResamples = p.GetValue(bootstrap),
            };
            // The prompts this run uses, written first, so the upsamplers it compares can be trained without them
            // (train-upsamplers --exclude-captions) before the long run.
            var promptsFile = PromptsFile(p.GetValue(output)!);
            File.WriteAllLines(promptsFile, QualityBenchmarkRunner.ReadPrompts(options).Prompts.Select(q => q.Caption));
            if (p.GetValue(promptsOnly))
            {
                console.Out.WriteLine(promptsFile);
                return 0;
            }
            var modelDir = ModelOption.Resolve(p.GetValue(model), console);
            using var pipe = StableDiffusionPipeline.FromPretrained(modelDir);
            // Each finished row is written at once, so a long run that is stopped still leaves its table so far.
            var done = new List<QualityRow>();
            var result = QualityBenchmarkRunner.Run(pipe, options, new SyncProgress(console), console.Cancellation, row =>
            {
                done.Add(row);
                File.WriteAllText(p.GetValue(output)! + ".partial", QualityBenchmark.ToMarkdown(done));
            });
            var header = string.Create(CultureInfo.InvariantCulture,
                $"Model `{Path.GetFileName(Path.GetFullPath(modelDir).TrimEnd('/'))}` (native {pipe.NativeSize} px), {result.Prompts.Count} {p.GetValue(split)}-split prompts, {options.Steps} steps, guidance {options.Guidance ?? pipe.DefaultGuidance}, pivot strength {options.PivotStrength ?? pipe.DefaultPivotStrength}, {Environment.ProcessorCount} CPU cores.");
            File.WriteAllText(p.GetValue(output)!, QualityBenchmarkRunner.Markdown(result, header));
            if (p.GetValue(grid) is string g) result.Grid.SavePng(g);
            if (p.GetValue(plot) is string pl)
                SeriesPlot.Save(pl, $"FD at x{options.Scales.Min()} vs training steps", "training steps",
                    QualityBenchmarkRunner.FidelitySeries(result.Rows, options.Scales.Min(), p.GetValue(liteSteps), p.GetValue(fullSteps), fts));
            console.Out.Write(QualityBenchmark.ToMarkdown(result.Rows));
            return 0;
        }));
        return cmd;
    }

    /// <summary>The prompt list beside the table: quality.md → quality.prompts.txt.</summary>
    public static string PromptsFile(string output) =>
        Path.Combine(Path.GetDirectoryName(output) ?? "", Path.GetFileNameWithoutExtension(output) + ".prompts.txt");

    private static List<string> Split(string? s) => (s ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();

    /// <summary>NAME=DIR@STEPS.</summary>
    public static FineTunedModel ParseFineTuned(string text)
    {
        int eq = text.IndexOf('='), at = text.LastIndexOf('@');
        if (eq <= 0 || at <= eq + 1 || !long.TryParse(text[(at + 1)..], NumberStyles.Integer, CultureInfo.InvariantCulture, out var steps))
            throw new ArgumentException($"--finetuned '{text}' is not NAME=DIR@STEPS");
        return new FineTunedModel(text[..eq], text[(eq + 1)..at], steps);
    }

    /// <summary>Progress lines written as they happen (the benchmark runs on this thread).</summary>
    private sealed class SyncProgress(CliConsole console) : IProgress<string>
    {
        public void Report(string value) => console.Error.WriteLine(value);
    }
}
