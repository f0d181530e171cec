using System.Diagnostics;
using System.Globalization;
using System.Text;
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
}

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
/// self-cascade, ...) with the same prompt and seed. Ground truth: the same synthetic clip (design, motion, magnitudes)
/// rendered at each size. Row "base" (x1) is the base videos themselves.
/// </summary>
public static class VideoBenchmark
{
    public static IReadOnlyList<VideoBenchmarkRow> Run(VideoPipeline pipe, IFeatureExtractor features, VideoBenchmarkOptions o,
        IProgress<string>? progress = null, CancellationToken ct = default, Action<VideoBenchmarkRow>? onRow = null)
    {
        if (o.Clips < 2) throw new ArgumentException($"the benchmark needs at least 2 clips (got {o.Clips})");
        if (o.Frames < 2) throw new ArgumentException($"temporal metrics need at least 2 frames (got {o.Frames})");
        if (o.Scales.Count == 0 || o.Scales.Any(s => s < 2)) throw new ArgumentException("scales must be 2 or more per side");
        int native = pipe.NativeSize;
        var baseSet = new MotionClipDataset(o.RenderDir, o.DatasetSeed, o.Frames, native);
        var captions = Enumerable.Range(0, o.Clips).Select(i => baseSet.Clip(i).Caption).ToList();

        VideoRequest Request(int i, int size, GenerationMethod method) => new()
        {
            Prompt = captions[i], Width = size, Height = size, Frames = o.Frames, Seed = i, Steps = o.Steps, Guidance = o.Guidance,
            PivotStrength = o.PivotStrength, Method = method,
        };

        (List<RgbImage[]> Videos, double Seconds) Sample(int size, GenerationMethod method, string name)
        {
            var videos = new List<RgbImage[]>();
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < o.Clips; i++)
            {
                ct.ThrowIfCancellationRequested();
                progress?.Report($"{name} {size}px: clip {i + 1}/{o.Clips} \"{captions[i]}\"");
                using var result = VideoCascadeGenerator.Generate(pipe, Request(i, size, method), null, ct);
                videos.Add(result.Videos[0]);
            }
            return (videos, sw.Elapsed.TotalSeconds / o.Clips);
        }

        var rows = new List<VideoBenchmarkRow>();
        var (baseVideos, baseSeconds) = Sample(native, GenerationMethod.Direct, "base");
        var baseTruth = Enumerable.Range(0, o.Clips).Select(i => baseSet.Clip(i).Frames.ToArray()).ToList();
        Add(Row(1, native, "base", baseVideos, baseTruth, baseVideos, baseSeconds));
        foreach (var scale in o.Scales)
        {
            int size = native * scale;
            var truthSet = new MotionClipDataset(o.RenderDir, o.DatasetSeed, o.Frames, size);
            var truth = Enumerable.Range(0, o.Clips).Select(i => truthSet.Clip(i).Frames.ToArray()).ToList();
            foreach (var method in o.Methods)
            {
                var name = MethodName(method);
                var (videos, seconds) = Sample(size, method, name);
                Add(Row(scale, size, name, videos, truth, baseVideos, seconds));
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

    /// <summary>The rows as a markdown table (lower FD, KID and frame-difference error are better).</summary>
    public static string ToMarkdown(IReadOnlyList<VideoBenchmarkRow> rows)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("| scale | size | method | FD ↓ | KID ×10³ ↓ | frame diff | ground-truth frame diff | frame-diff error vs base ↓ | s / clip |");
        sb.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        foreach (var r in rows)
            sb.AppendLine(string.Create(inv, $"| x{r.Scale} | {r.Size} | {r.Method} | {r.Fd:F2} | {r.Kid.Mean * 1000:F2} ± {r.Kid.Std * 1000:F2} | " +
                $"{r.FrameDifference:F4} | {r.GroundTruthFrameDifference:F4} | {r.FrameDifferenceErrorVsBase:F4} | {r.SecondsPerClip:F1} |"));
        return sb.ToString();
    }
}
