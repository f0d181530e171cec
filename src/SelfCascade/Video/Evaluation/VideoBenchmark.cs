using System.Diagnostics;
using System.Globalization;
using System.Text;
using SelfCascade.Cascade.Upsamplers;
using SelfCascade.Data.Motion;
using SelfCascade.Evaluation;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using SelfCascade.Video.Cascade;
using SelfCascade.Video.Pipelines;
using static TorchSharp.torch;

namespace SelfCascade.Video.Evaluation;

public sealed record VideoBenchmarkOptions
{
    /// <summary>Emoji renders (PNG + caption .txt), e.g. data/render/128/test: the designs of the ground-truth clips.</summary>
    public required string RenderDir { get; init; }
    /// <summary>Clips 0..Clips-1 of the synthetic clip set (<see cref="MotionClipDataset"/>; video seed = clip index).</summary>
    public int Clips { get; init; } = 12;
    /// <summary>The clip set's seed (which design and motion each clip gets).</summary>
    public int DatasetSeed { get; init; }
    public IReadOnlyList<int> Scales { get; init; } = [2, 4];
    public IReadOnlyList<GenerationMethod> Methods { get; init; } = [GenerationMethod.Direct, GenerationMethod.SelfCascade];
    public int Frames { get; init; } = 8;
    public int Steps { get; init; } = 25;
    /// <summary>Null = the model's default (guidance, pivot strength).</summary>
    public double? Guidance { get; init; }
    public double? PivotStrength { get; init; }
    public int KidSubsetSize { get; init; } = 50;
    public int KidSubsets { get; init; } = 100;
    /// <summary>
    /// Feature-upsampler checkpoint folders, one per upscaling stage in order (a checkpoint folder or the folder
    /// train-upsamplers --out wrote): rows "self-cascade+lite" / "self-cascade+full" (the tuned cascade, same prompts,
    /// seeds and noise as "self-cascade") at every scale whose stage count they cover. Empty = no such row.
    /// AnimateDiff models only (the sets run per frame in the image UNet).
    /// </summary>
    public IReadOnlyList<string> UpsamplersLite { get; init; } = [];
    public IReadOnlyList<string> UpsamplersFull { get; init; } = [];
    /// <summary>Largest scale at which direct and attn-scale run (the cascades run at every scale); null = every scale.</summary>
    public int? DirectMaxScale { get; init; }
}

/// <summary>One row the benchmark will sample: a method at a scale (tuned rows name their upsampler sets).</summary>
public sealed record VideoBenchmarkEntry(int Scale, int Size, string Method, GenerationMethod Kind, IReadOnlyList<string>? UpsamplerDirs);

/// <summary>The rows a run samples, in order after the base row, and why any requested row is left out.</summary>
public sealed record VideoBenchmarkPlan(IReadOnlyList<VideoBenchmarkEntry> Entries, IReadOnlyList<string> Notes);

/// <summary>The frames of one clip of one row (for inspection and tests).</summary>
public sealed record VideoBenchmarkVideo(int Scale, string Method, int Clip, IReadOnlyList<RgbImage> Frames);

/// <summary>
/// One method at one scale over every clip: FD and KID of all its frames against the ground-truth clips' frames at the
/// same size (feature space of the extractor), the mean frame difference of its clips and of the ground truth, the
/// mean frame-difference error against the base video (<see cref="TemporalMetrics.FrameDifferenceError"/>), seconds per clip.
/// </summary>
public sealed record VideoBenchmarkRow(int Scale, int Size, string Method, double Fd, KidResult Kid, double FrameDifference,
    double GroundTruthFrameDifference, double FrameDifferenceErrorVsBase, double SecondsPerClip, int Clips);

/// <summary>
/// The video benchmark: per clip, the base video (direct at the native size, seed = clip index, prompt = the synthetic
/// clip's caption, e.g. "red heart, zooming in"), then at every scale each method (direct, the tuning-free
/// self-cascade, the tuned cascade with upsampler sets, ...) with the same prompt and seed. Ground truth: the same
/// synthetic clip (design, motion, magnitudes) rendered at each size. Row "base" (x1) is the base videos themselves.
/// </summary>
public static class VideoBenchmark
{
    public const string TunedLite = "self-cascade+lite";
    public const string TunedFull = "self-cascade+full";

    /// <summary>
    /// The rows a run with <paramref name="o"/> samples: at every scale the tuning-free methods (direct and attn-scale
    /// only up to <see cref="VideoBenchmarkOptions.DirectMaxScale"/>), then each tuned set where the cascade's
    /// upscaling stages are no more than its checkpoints (one per stage); every row left out gets a note.
    /// </summary>
    public static VideoBenchmarkPlan Plan(VideoPipeline pipe, VideoBenchmarkOptions o)
    {
        Validate(o);
        int native = pipe.NativeSize;
        var entries = new List<VideoBenchmarkEntry>();
        var notes = new List<string>();
        foreach (var scale in o.Scales)
        {
            int size = native * scale;
            var skipped = new List<string>();
            foreach (var method in o.Methods)
            {
                if (method is GenerationMethod.Direct or GenerationMethod.AttnScale && o.DirectMaxScale is int max && scale > max)
                    skipped.Add(MethodName(method));
                else entries.Add(new VideoBenchmarkEntry(scale, size, MethodName(method), method, null));
            }
            if (skipped.Count > 0)
                notes.Add($"x{scale} ({size} px): {string.Join(" and ", skipped)} not run (direct sampling limited to x{o.DirectMaxScale} and below; the cascades run at every scale).");
            int upscalingStages = VideoCascadeGenerator.Plan(pipe, size, size, Request(o, "plan", 0, size, GenerationMethod.SelfCascade)).Stages.Count - 1;
            foreach (var (name, dirs) in new[] { (TunedLite, o.UpsamplersLite), (TunedFull, o.UpsamplersFull) })
            {
                if (dirs.Count == 0) continue;
                if (upscalingStages <= dirs.Count) entries.Add(new VideoBenchmarkEntry(scale, size, name, GenerationMethod.SelfCascade, dirs));
                else notes.Add($"x{scale} ({size} px): {name} left out: the cascade has {upscalingStages} upscaling stages and {dirs.Count} upsampler set{(dirs.Count == 1 ? " was" : "s were")} given (one per stage).");
            }
        }
        return new VideoBenchmarkPlan(entries, notes);
    }

    private static void Validate(VideoBenchmarkOptions o)
    {
        if (o.Clips < 2) throw new ArgumentException($"the benchmark needs at least 2 clips (got {o.Clips})");
        if (o.Frames < 2) throw new ArgumentException($"temporal metrics need at least 2 frames (got {o.Frames})");
        if (o.Scales.Count == 0 || o.Scales.Any(s => s < 2)) throw new ArgumentException("scales must be 2 or more per side");
        if (o.DirectMaxScale is int m && m < 1) throw new ArgumentException($"the direct maximum scale must be 1 or more (got {m})");
    }

    private static VideoRequest Request(VideoBenchmarkOptions o, string caption, int clip, int size, GenerationMethod method,
        FeatureUpsamplerInjector? upsamplers = null) => new()
    {
        Prompt = caption, Width = size, Height = size, Frames = o.Frames, Seed = clip, Steps = o.Steps, Guidance = o.Guidance,
        PivotStrength = o.PivotStrength, Method = method, Upsamplers = upsamplers,
    };

    /// <param name="onVideo">Each clip's frames as it is sampled (base row included).</param>
    public static IReadOnlyList<VideoBenchmarkRow> Run(VideoPipeline pipe, IFeatureExtractor features, VideoBenchmarkOptions o,
        IProgress<string>? progress = null, CancellationToken ct = default, Action<VideoBenchmarkRow>? onRow = null,
        Action<VideoBenchmarkVideo>? onVideo = null)
    {
        var plan = Plan(pipe, o);
        int native = pipe.NativeSize;
        // The tuned sets load before any sampling, so a bad or misfitting checkpoint fails at once.
        var injectors = new Dictionary<IReadOnlyList<string>, FeatureUpsamplerInjector>(ReferenceEqualityComparer.Instance);
        try
        {
            foreach (var dirs in new[] { o.UpsamplersLite, o.UpsamplersFull }.Where(d => d.Count > 0))
                injectors[dirs] = FeatureUpsamplerInjector.FromCheckpoints(dirs, pipe.UpsamplerUNet, null, pipe.DType);
            return Run(pipe, features, o, plan, injectors, native, progress, ct, onRow, onVideo);
        }
        finally
        {
            foreach (var i in injectors.Values) i.Dispose();
        }
    }

    private static IReadOnlyList<VideoBenchmarkRow> Run(VideoPipeline pipe, IFeatureExtractor features, VideoBenchmarkOptions o,
        VideoBenchmarkPlan plan, IReadOnlyDictionary<IReadOnlyList<string>, FeatureUpsamplerInjector> injectors, int native,
        IProgress<string>? progress, CancellationToken ct, Action<VideoBenchmarkRow>? onRow, Action<VideoBenchmarkVideo>? onVideo)
    {
        var baseSet = new MotionClipDataset(o.RenderDir, o.DatasetSeed, o.Frames, native);
        var captions = Enumerable.Range(0, o.Clips).Select(i => baseSet.Clip(i).Caption).ToList();

        (List<RgbImage[]> Videos, double Seconds) Sample(int scale, int size, GenerationMethod method, string name, FeatureUpsamplerInjector? ups = null)
        {
            var videos = new List<RgbImage[]>();
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < o.Clips; i++)
            {
                ct.ThrowIfCancellationRequested();
                progress?.Report($"{name} {size}px: clip {i + 1}/{o.Clips} \"{captions[i]}\"");
                using var result = VideoCascadeGenerator.Generate(pipe, Request(o, captions[i], i, size, method, ups), null, ct);
                videos.Add(result.Videos[0]);
                onVideo?.Invoke(new VideoBenchmarkVideo(scale, name, i, result.Videos[0]));
            }
            return (videos, sw.Elapsed.TotalSeconds / o.Clips);
        }

        var rows = new List<VideoBenchmarkRow>();
        var (baseVideos, baseSeconds) = Sample(1, native, GenerationMethod.Direct, "base");
        var baseTruth = Enumerable.Range(0, o.Clips).Select(i => baseSet.Clip(i).Frames.ToArray()).ToList();
        Add(Row(1, native, "base", baseVideos, baseTruth, baseVideos, baseSeconds));
        foreach (var scale in o.Scales)
        {
            int size = native * scale;
            var truthSet = new MotionClipDataset(o.RenderDir, o.DatasetSeed, o.Frames, size);
            var truth = Enumerable.Range(0, o.Clips).Select(i => truthSet.Clip(i).Frames.ToArray()).ToList();
            foreach (var entry in plan.Entries.Where(e => e.Scale == scale))
            {
                var ups = entry.UpsamplerDirs is null ? null : injectors[entry.UpsamplerDirs];
                var (videos, seconds) = Sample(scale, size, entry.Kind, entry.Method, ups);
                Add(Row(scale, size, entry.Method, videos, truth, baseVideos, seconds));
            }
        }
        return rows;

        void Add(VideoBenchmarkRow row) { rows.Add(row); onRow?.Invoke(row); }

        VideoBenchmarkRow Row(int scale, int size, string name, List<RgbImage[]> videos, List<RgbImage[]> truth, List<RgbImage[]> bases, double seconds)
        {
            using var scope = NewDisposeScope();
            var real = truth.SelectMany(v => v).ToList();
            var generated = videos.SelectMany(v => v).ToList();
            var fr = features.Extract(real);
            var fg = features.Extract(generated);
            double fd = FrechetDistance.Compute(fr, fg);
            var kid = KernelInceptionDistance.Compute(fr, fg, o.KidSubsetSize, o.KidSubsets, seed: scale);
            double diff = videos.Average(TemporalMetrics.MeanFrameDifference);
            double truthDiff = truth.Average(TemporalMetrics.MeanFrameDifference);
            double error = videos.Select((v, i) => TemporalMetrics.FrameDifferenceError(v, bases[i])).Average();
            return new VideoBenchmarkRow(scale, size, name, fd, kid, diff, truthDiff, error, seconds, videos.Count);
        }
    }

    public static string MethodName(GenerationMethod method) => method switch
    {
        GenerationMethod.Direct => "direct",
        GenerationMethod.AttnScale => "attn-scale",
        GenerationMethod.UpscaleOnly => "upscale-only",
        GenerationMethod.SelfCascade => "self-cascade",
        _ => method.ToString(),
    };

    /// <summary>The rows as a markdown table (lower FD, KID and frame-difference error are better), then the plan's notes.</summary>
    public static string ToMarkdown(IReadOnlyList<VideoBenchmarkRow> rows, IReadOnlyList<string>? notes = null)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("| scale | size | method | FD ↓ | KID ×10³ ↓ | frame diff | ground-truth frame diff | frame-diff error vs base ↓ | s / clip |");
        sb.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        foreach (var r in rows)
            sb.AppendLine(string.Create(inv, $"| x{r.Scale} | {r.Size} | {r.Method} | {r.Fd:F2} | {r.Kid.Mean * 1000:F2} ± {r.Kid.Std * 1000:F2} | " +
                $"{r.FrameDifference:F4} | {r.GroundTruthFrameDifference:F4} | {r.FrameDifferenceErrorVsBase:F4} | {r.SecondsPerClip:F1} |"));
        if (notes is { Count: > 0 })
        {
            sb.AppendLine();
            foreach (var n in notes) sb.AppendLine("Note: " + n);
        }
        return sb.ToString();
    }
}
