using System.CommandLine;
using System.Globalization;
using SelfCascade.Evaluation;
using SelfCascade.Pipelines;
using SelfCascade.Video.Evaluation;
using SelfCascade.Video.Pipelines;

namespace SelfCascade.Cli.Commands;

/// <summary>
/// `selfcascade bench-video`: direct vs the tuning-free (and, with upsampler sets, the tuned) video cascade at x2 and x4
/// on synthetic clips with known motion:
/// per-frame FD/KID in the feature network's space and temporal consistency (<see cref="VideoBenchmark"/>), as a
/// markdown table.
/// </summary>
public static class BenchVideoCommand
{
    public const string EmbeddedFeatureNet = "emoji-featurenet.safetensors";

    public static Command Create(CliConsole console)
    {
        var model = ModelOption.Create();
        model.Description = "A video model as for generate-video (default: the embedded emoji model with the embedded motion adapter)";
        var adapter = new Option<string?>("--motion-adapter") { Description = "A diffusers MotionAdapter folder (AnimateDiff; default as for generate-video)" };
        var renders = new Option<string>("--renders") { Description = "Emoji renders (PNG + .txt captions), e.g. data/render/128/test: designs of the ground-truth clips", Required = true };
        var clips = new Option<int>("--clips") { Description = "Synthetic clips (prompt = the clip's caption, seed = its index)", DefaultValueFactory = _ => 12 };
        var datasetSeed = new Option<int>("--clip-seed") { Description = "Seed of the synthetic clip set (design and motion per clip)", DefaultValueFactory = _ => 0 };
        var scales = new Option<string>("--scales") { Description = "Per-side scales", DefaultValueFactory = _ => "2,4" };
        var methods = new Option<string>("--methods") { Description = "Methods: direct, attn-scale, upscale-only, self-cascade", DefaultValueFactory = _ => "direct,self-cascade" };
        var frames = new Option<int>("--frames") { Description = "Frames per clip", DefaultValueFactory = _ => 8 };
        var steps = new Option<int>("--steps") { Description = "Denoising steps", DefaultValueFactory = _ => 25 };
        var guidance = new Option<double?>("--guidance") { Description = "Guidance scale (default: the model's)" };
        var pivot = new Option<double?>("--pivot-strength") { Description = "Pivot strength of the cascade (default: the model's)" };
        var featureNet = new Option<string?>("--feature-net") { Description = $"Feature network file (default: the embedded models/{EmbeddedFeatureNet})" };
        var device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N", DefaultValueFactory = _ => "cpu" };
        var output = new Option<string>("--out") { Description = "Markdown table output", DefaultValueFactory = _ => "video-quality.md" };
        var lite = new Option<string?>("--upsamplers-lite")
        {
            Description = "lite upsampler checkpoints per cascade stage, comma-separated (a checkpoint folder or the folder train-upsamplers --out wrote): row self-cascade+lite at every scale whose stages they cover (AnimateDiff models only)",
        };
        var full = new Option<string?>("--upsamplers-full") { Description = "full upsampler checkpoints per cascade stage, comma-separated, as --upsamplers-lite: row self-cascade+full" };
        var directMax = new Option<int?>("--direct-max-scale") { Description = "Largest scale for direct and attn-scale (the cascades run at every scale; default: no limit)" };
        var cmd = new Command("bench-video", "Measure direct vs the video self-cascade: per-frame FD/KID and temporal consistency against synthetic clips with known motion")
        {
            model, adapter, renders, clips, datasetSeed, scales, methods, frames, steps, guidance, pivot, lite, full, directMax, featureNet, device, output,
        };
        cmd.SetAction(p => console.Guard(p.GetValue(CliApp.LibTorchOption), () =>
        {
            var options = new VideoBenchmarkOptions
            {
                RenderDir = p.GetValue(renders)!, Clips = p.GetValue(clips), DatasetSeed = p.GetValue(datasetSeed),
                Scales = Split(p.GetValue(scales)!).Select(s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v
                    : throw new ArgumentException($"--scales: '{s}' is not a whole number")).ToList(),
                Methods = Split(p.GetValue(methods)!).Select(GenerateCommand.ParseMethod).ToList(),
                Frames = p.GetValue(frames), Steps = p.GetValue(steps), Guidance = p.GetValue(guidance), PivotStrength = p.GetValue(pivot),
                UpsamplersLite = Split(p.GetValue(lite) ?? ""), UpsamplersFull = Split(p.GetValue(full) ?? ""), DirectMaxScale = p.GetValue(directMax),
            };
            if (!Directory.Exists(options.RenderDir)) throw new ArgumentException($"--renders '{options.RenderDir}': folder not found");
            if (options.DirectMaxScale is int dm && dm < 1) throw new ArgumentException($"--direct-max-scale must be 1 or more (got {dm})");
            foreach (var (name, dirs) in new[] { ("--upsamplers-lite", options.UpsamplersLite), ("--upsamplers-full", options.UpsamplersFull) })
                foreach (var dir in dirs)
                    if (!Directory.Exists(dir)) throw new ArgumentException($"{name} '{dir}': folder not found");
            var netPath = p.GetValue(featureNet) ?? EmbeddedFeatureNetPath()
                ?? throw new ArgumentException($"no --feature-net given and models/{EmbeddedFeatureNet} was not found beside the program or in the checkout");
            if (!File.Exists(netPath)) throw new ArgumentException($"--feature-net '{netPath}': file not found");
            string? adapterDir = p.GetValue(adapter);
            if (adapterDir != null && !Directory.Exists(adapterDir)) throw new ArgumentException($"--motion-adapter '{adapterDir}': folder not found");
            var modelDir = ModelOption.Resolve(p.GetValue(model), console);
            if (p.GetValue(model) is null && adapterDir is null)
                adapterDir = GenerateVideoCommand.EmbeddedMotionDir() ?? throw new ArgumentException(
                    $"no --motion-adapter given and the embedded motion adapter 'models/{GenerateVideoCommand.EmbeddedMotionName}' was not found");
            using var pipe = VideoPipeline.FromPretrained(modelDir, adapterDir, new PipelineOptions { Device = p.GetValue(device)! });
            var plan = VideoBenchmark.Plan(pipe, options);
            using var features = new FeatureNetExtractor(FeatureNet.Load(netPath), ownsNet: true);
            var outPath = p.GetValue(output)!;
            var done = new List<VideoBenchmarkRow>();
            var rows = VideoBenchmark.Run(pipe, features, options, new LineProgress(console), console.Cancellation, row =>
            {
                done.Add(row);
                File.WriteAllText(outPath + ".partial", VideoBenchmark.ToMarkdown(done, plan.Notes));
            });
            var header = string.Create(CultureInfo.InvariantCulture,
                $"Model `{Path.GetFileName(Path.GetFullPath(modelDir).TrimEnd('/'))}` ({pipe.Kind}, native {pipe.NativeSize} px), {options.Clips} synthetic clips of {options.Frames} frames, " +
                $"{options.Steps} steps, guidance {options.Guidance ?? pipe.DefaultGuidance}, pivot strength {options.PivotStrength ?? pipe.DefaultPivotStrength}, " +
                $"feature net {Path.GetFileName(netPath)}, {Environment.ProcessorCount} CPU cores.");
            var sets = string.Concat(new[] { ("lite", options.UpsamplersLite), ("full", options.UpsamplersFull) }.Where(s => s.Item2.Count > 0)
                .Select(s => $" Upsamplers {s.Item1}: {string.Join(", ", s.Item2.Select(d => Path.GetFileName(Path.GetFullPath(d).TrimEnd('/'))))}."));
            var table = VideoBenchmark.ToMarkdown(rows, plan.Notes);
            File.WriteAllText(outPath, header + sets + "\n\n" + table);
            File.Delete(outPath + ".partial");
            console.Out.Write(table);
            return 0;
        }));
        return cmd;
    }

    private static List<string> Split(string s) => s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();

    /// <summary>models/emoji-featurenet.safetensors beside the executable or in a folder above it.</summary>
    public static string? EmbeddedFeatureNetPath()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "models", EmbeddedFeatureNet);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    private sealed class LineProgress(CliConsole console) : IProgress<string>
    {
        public void Report(string value) => console.Error.WriteLine(value);
    }
}
