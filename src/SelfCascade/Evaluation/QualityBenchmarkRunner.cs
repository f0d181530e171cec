using System.Globalization;
using System.Text;
using SelfCascade.Cascade;
using SelfCascade.Cascade.Upsamplers;
using SelfCascade.Data;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using TorchSharp;

namespace SelfCascade.Evaluation;

/// <summary>A fine-tuned model evaluated as a method: its own native size only, sampled directly.</summary>
public sealed record FineTunedModel(string Name, string Directory, long TrainingSteps);

public sealed record QualityRunOptions
{
    /// <summary>A dataset folder made by `selfcascade data` (manifest.json, render/{size}/{split}/).</summary>
    public required string DataDir { get; init; }
    /// <summary>
    /// Where the prompts and the real sets come from: <see cref="Split.Test"/> (designs the base model never saw; the
    /// first <see cref="Prompts"/> by id) or <see cref="Split.Train"/> (concepts the model learned at its native size,
    /// whose larger renders it never saw; spread over the split, one per caption: <see cref="QualityBenchmarkRunner.SelectPrompts"/>).
    /// </summary>
    public Split Split { get; init; } = Split.Test;
    public int Prompts { get; init; } = 24;
    public IReadOnlyList<int> Scales { get; init; } = [2, 4];
    public int Steps { get; init; } = 25;
    public double? Guidance { get; init; }
    /// <summary>Null = the model's default.</summary>
    public double? PivotStrength { get; init; }
    /// <summary>Which of direct, attn-scale, upscale-only, self-cascade to run (the tuned and fine-tuned ones follow their inputs).</summary>
    public IReadOnlyList<string> Methods { get; init; } = ["direct", "attn-scale", "upscale-only", "self-cascade"];
    /// <summary>Feature-upsampler checkpoints per upscaling stage (32→64, 64→128, ...) and their training steps.</summary>
    public IReadOnlyList<string> UpsamplersLite { get; init; } = [];
    public IReadOnlyList<string> UpsamplersFull { get; init; } = [];
    public IReadOnlyList<FineTunedModel> FineTuned { get; init; } = [];
    /// <summary>The feature network for FD/KID: loaded from here, or trained on the train split and saved here.</summary>
    public required string FeatureNetPath { get; init; }
    public int FeatureNetEpochs { get; init; } = 8;
    public int GridPrompts { get; init; } = 4;
    public int KidSubsetSize { get; init; } = 50;
    /// <summary>Direct and attn-scale sampling run only up to this scale (each 2x per side costs ~4x or more; at x8 only the cascades run).</summary>
    public int DirectMaxScale { get; init; } = 4;
    /// <summary>Folder keeping every generated image with its cost (<see cref="GeneratedImageStore"/>); null = keep none.</summary>
    public string? ImagesDir { get; init; }
    /// <summary>Bootstrap resamples for the 95 % intervals (0 = none).</summary>
    public int BootstrapResamples { get; init; } = 1000;
    /// <summary>Add the base samples' own row (fidelity and prompt match at the native size).</summary>
    public bool BaseRow { get; init; } = true;
}

public sealed record QualityRunResult(IReadOnlyList<QualityRow> Rows, RgbImage Grid, IReadOnlyList<QualityPrompt> Prompts, string FeatureNetNote);

/// <summary>
/// Runs <see cref="QualityBenchmark"/> on a dataset and a pipeline: one split's captions as prompts (seed = index),
/// real renders of that split at each target size, the methods by name, the tuned cascade from upsampler
/// checkpoints, fine-tuned models at their own size, and a comparison grid at the largest scale.
/// </summary>
public static class QualityBenchmarkRunner
{
    public static QualityRunResult Run(StableDiffusionPipeline pipe, QualityRunOptions o, IProgress<string>? progress = null,
        CancellationToken ct = default, Action<QualityRow>? onRow = null)
    {
        var (entries, split, prompts) = ReadPrompts(o);
        string splitName = DatasetSplit.Name(o.Split);
        int native = pipe.NativeSize;
        var realCache = new Dictionary<int, IReadOnlyList<RgbImage>>();
        IReadOnlyList<RgbImage> Real(int size)
        {
            if (realCache.TryGetValue(size, out var r)) return r;
            var list = split.Select(e => Path.Combine(o.DataDir, DatasetSummary.ImagePath(size, o.Split, e.Id)))
                .Where(File.Exists).Select(RgbImage.Load).ToList();
            if (list.Count == 0) throw new InvalidDataException($"{o.DataDir}: no {splitName} renders at {size} px (run `selfcascade data --sizes ...,{size}`)");
            return realCache[size] = list;
        }

        var (features, note) = LoadOrTrainFeatures(o, entries, native, progress);
        using var _ = features;
        if (features.Net.ClassNames is { } classNames) RequirePromptClasses(prompts, classNames, o.FeatureNetPath, splitName);
        double guidance = o.Guidance ?? pipe.DefaultGuidance;
        RgbImage Sample(GenerationMethod method, QualityPrompt p, int size, IStageFeatureInjector? injector = null, StableDiffusionPipeline? with = null)
        {
            ct.ThrowIfCancellationRequested();
            var target = with ?? pipe;
            using var result = CascadeGenerator.Generate(target, new CascadeRequest
            {
                Request = new GenerationRequest(p.Caption) { Seed = p.Seed, Steps = o.Steps, Guidance = guidance, Width = size, Height = size },
                Method = method, PivotStrength = o.PivotStrength, Injector = injector,
            }, null, ct);
            return result.Images[0];
        }

        var methods = new List<QualityMethod>();
        foreach (var m in o.Methods)
        {
            var kind = m switch
            {
                "direct" => GenerationMethod.Direct, "attn-scale" => GenerationMethod.AttnScale,
                "upscale-only" => GenerationMethod.UpscaleOnly, "self-cascade" => GenerationMethod.SelfCascade,
                _ => throw new ArgumentException($"unknown method '{m}'"),
            };
            var method = new QualityMethod(m, (p, size) => Sample(kind, p, size));
            if (kind is GenerationMethod.Direct or GenerationMethod.AttnScale)
                method = method with { Sizes = Enumerable.Range(1, Math.Max(1, o.DirectMaxScale)).Select(k => native * k).ToHashSet() };
            methods.Add(method);
        }
        var owned = new List<IDisposable>();
        try
        {
            foreach (var (name, dirs) in new[] { ("self-cascade+lite", o.UpsamplersLite), ("self-cascade+full", o.UpsamplersFull) })
            {
                if (dirs.Count == 0) continue;
                var injector = FeatureUpsamplerInjector.FromCheckpoints(dirs, pipe.Unet, null, pipe.DType);
                owned.Add(injector);
                methods.Add(new QualityMethod(name, (p, size) => Sample(GenerationMethod.SelfCascade, p, size, injector))
                {
                    // A set trained for k upscaling stages serves targets up to native x 2^k.
                    Sizes = Enumerable.Range(1, dirs.Count).Select(k => native << k).ToHashSet(),
                });
            }
            foreach (var ft in o.FineTuned)
            {
                var other = StableDiffusionPipeline.FromPretrained(ft.Directory, new PipelineOptions { Device = pipe.Device.ToString(), DType = pipe.DType });
                owned.Add(other);
                methods.Add(new QualityMethod(ft.Name, (p, size) => Sample(GenerationMethod.Direct, p, size, null, other))
                {
                    Sizes = new HashSet<int> { other.NativeSize },
                });
            }

            // Keep the first few prompts' images at the largest scale for the grid.
            int gridScale = o.Scales.Max();
            var gridCells = new Dictionary<string, IReadOnlyList<RgbImage>>();
            void Keep(string name, int scale, IReadOnlyList<RgbImage> images)
            {
                if (scale == gridScale || name == "base") gridCells[name] = images.Take(o.GridPrompts).ToList();
            }
            var rows = QualityBenchmark.Run(
                new QualityBenchmarkOptions
                {
                    NativeSize = native, Scales = o.Scales,
                    Fidelity = new FidelityOptions(KidSubsetSize: Math.Min(o.KidSubsetSize, prompts.Count), KidSubsets: 50),
                    BootstrapResamples = o.BootstrapResamples, BaseRow = o.BaseRow,
                },
                prompts, p => Sample(GenerationMethod.Direct, p, native), Real, methods, features, progress, Keep,
                o.ImagesDir is null ? null : new GeneratedImageStore(o.ImagesDir), onRow,
                features.Net.ClassNames is null ? null : features);
            var grid = Grid(gridCells, prompts.Take(o.GridPrompts).ToList(), native * gridScale);
            return new QualityRunResult(rows, grid, prompts, note);
        }
        finally
        {
            foreach (var d in owned) d.Dispose();
        }
    }

    /// <summary>The dataset's designs, the chosen split's designs by id, and the prompts a run with <paramref name="o"/> uses.</summary>
    public static (IReadOnlyList<DatasetEntry> All, List<DatasetEntry> Split, List<QualityPrompt> Prompts) ReadPrompts(QualityRunOptions o)
    {
        var manifest = Path.Combine(o.DataDir, "manifest.json");
        var entries = DatasetManifest.ReadEntries(manifest);
        var split = entries.Where(e => e.Split == o.Split).OrderBy(e => e.Id, StringComparer.Ordinal).ToList();
        if (split.Count == 0) throw new InvalidDataException($"{manifest}: no {DatasetSplit.Name(o.Split)}-split designs");
        return (entries, split, SelectPrompts(split, o.Split, o.Prompts));
    }

    /// <summary>
    /// The benchmark's prompts from one split's designs (<paramref name="designs"/> ordered by id), seed = index.
    /// Test: the first <paramref name="count"/> designs (as every earlier run). Train: <paramref name="count"/> designs
    /// spread evenly over the split, design <c>i * designs.Count / count</c>, skipping forward (wrapping at the end) to
    /// the next design whose caption was not taken yet, so each caption is asked once; at most one per distinct caption.
    /// </summary>
    public static List<QualityPrompt> SelectPrompts(IReadOnlyList<DatasetEntry> designs, Split split, int count)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "at least one prompt");
        if (split == Split.Test) return designs.Take(count).Select((e, i) => new QualityPrompt(e.Id, e.Caption, i)).ToList();
        if (split != Split.Train) throw new ArgumentException($"prompts come from the train or the test split, not {DatasetSplit.Name(split)}");
        int n = Math.Min(count, designs.Select(e => e.Caption).Distinct(StringComparer.Ordinal).Count());
        var taken = new HashSet<string>(StringComparer.Ordinal);
        var prompts = new List<QualityPrompt>(n);
        for (int i = 0; i < n; i++)
        {
            int k = (int)((long)i * designs.Count / n);
            // Terminates: fewer than n captions are taken, so an untaken one exists.
            while (taken.Contains(designs[k].Caption)) k = (k + 1) % designs.Count;
            taken.Add(designs[k].Caption);
            prompts.Add(new QualityPrompt(designs[k].Id, designs[k].Caption, i));
        }
        return prompts;
    }

    /// <summary>Every prompt's caption must be a class of the feature net, or prompt match would silently score it wrong.</summary>
    public static void RequirePromptClasses(IReadOnlyList<QualityPrompt> prompts, IReadOnlyList<string> classNames, string netPath, string splitName)
    {
        var classes = classNames.ToHashSet(StringComparer.Ordinal);
        var missing = prompts.FirstOrDefault(p => !classes.Contains(p.Caption));
        if (missing is not null)
            throw new InvalidDataException($"{netPath}: the feature network's {classNames.Count} classes do not include the {splitName}-split prompt '{missing.Caption}' ({missing.Id}); "
                + $"train one on this split's captions (`selfcascade train-feature-net --split {splitName}`)");
    }

    private static RgbImage Grid(Dictionary<string, IReadOnlyList<RgbImage>> cells, IReadOnlyList<QualityPrompt> prompts, int size)
    {
        var list = new List<(RgbImage, string)>();
        int columns = cells.Count;
        for (int i = 0; i < prompts.Count; i++)
            foreach (var (name, images) in cells)
                if (i < images.Count) list.Add((images[i], i == 0 ? name : ""));
        return ImageGrid.Compose(list, columns);
    }

    /// <summary>The FeatureNet from <see cref="QualityRunOptions.FeatureNetPath"/>, or trained to tell the train-split designs apart at every size.</summary>
    private static (FeatureNetExtractor, string) LoadOrTrainFeatures(QualityRunOptions o, IReadOnlyList<DatasetEntry> entries, int native, IProgress<string>? progress)
    {
        if (File.Exists(o.FeatureNetPath))
        {
            var net = FeatureNet.Load(o.FeatureNetPath);
            return (new FeatureNetExtractor(net, ownsNet: true), $"loaded {Path.GetFileName(o.FeatureNetPath)}"
                + (net.ClassNames is { } names ? $" ({names.Count} caption classes; prompt match uses its head)" : " (no class names: no prompt match)"));
        }
        var train = entries.Where(e => e.Split == Split.Train).OrderBy(e => e.Id, StringComparer.Ordinal).ToList();
        var data = new List<(RgbImage, int)>();
        var sizes = new[] { native, native * 2, native * 4 };
        for (int label = 0; label < train.Count; label++)
            foreach (var s in sizes)
            {
                var path = Path.Combine(o.DataDir, DatasetSummary.ImagePath(s, Split.Train, train[label].Id));
                if (File.Exists(path)) data.Add((RgbImage.Load(path), label));
            }
        if (data.Count == 0) throw new InvalidDataException($"{o.DataDir}: no train renders to train the feature network on");
        progress?.Report($"feature network: {data.Count} renders of {train.Count} designs, {o.FeatureNetEpochs} epochs");
        var result = FeatureNetTrainer.Train(data, new FeatureNetTrainOptions { Epochs = o.FeatureNetEpochs, InputSize = 64, Seed = 0 });
        result.Net.Save(o.FeatureNetPath);
        var last = result.History[^1];
        return (new FeatureNetExtractor(result.Net, ownsNet: true),
            string.Create(CultureInfo.InvariantCulture, $"trained here: {train.Count} train-split designs x sizes {string.Join("/", sizes)}, {o.FeatureNetEpochs} epochs, final loss {last.Loss:F3}, accuracy {last.Accuracy:P0}"));
    }

    /// <summary>The fidelity-against-training-steps series: tuned sets start at the tuning-free cascade, fine-tunes at direct.</summary>
    public static List<(string, IReadOnlyList<(double, double)>)> FidelitySeries(IReadOnlyList<QualityRow> rows, int scale,
        long liteSteps, long fullSteps, IReadOnlyList<FineTunedModel> fineTuned)
    {
        double Fd(string m) => rows.FirstOrDefault(r => r.Method == m && r.Scale == scale)?.Fd ?? double.NaN;
        var series = new List<(string, IReadOnlyList<(double, double)>)>();
        if (!double.IsNaN(Fd("self-cascade+lite"))) series.Add(("tuned lite", [(0, Fd("self-cascade")), (liteSteps, Fd("self-cascade+lite"))]));
        if (!double.IsNaN(Fd("self-cascade+full"))) series.Add(("tuned full", [(0, Fd("self-cascade")), (fullSteps, Fd("self-cascade+full"))]));
        var ft = fineTuned.Where(f => !double.IsNaN(Fd(f.Name))).Select(f => ((double)f.TrainingSteps, Fd(f.Name))).ToList();
        if (ft.Count > 0) series.Add(("fine-tune", [(0, Fd("direct")), .. ft]));
        return series;
    }

    public static string Markdown(QualityRunResult r, string header)
    {
        var sb = new StringBuilder();
        sb.AppendLine(header);
        sb.AppendLine();
        sb.AppendLine(QualityBenchmark.ToMarkdown(r.Rows));
        sb.AppendLine($"Feature network for FD/KID: {r.FeatureNetNote}.");
        return sb.ToString();
    }
}
