using System.Diagnostics;
using System.Globalization;
using System.Text;
using SelfCascade.Imaging;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Evaluation;

/// <summary>One prompt of the benchmark: a design's caption (test or train split), and a fixed seed.</summary>
public sealed record QualityPrompt(string Id, string Caption, long Seed);

/// <summary>
/// A method under test: produces the image for a prompt at a target size (width = height = size). The benchmark
/// times each call and reads the process's peak resident memory around it.
/// </summary>
public sealed record QualityMethod(string Name, Func<QualityPrompt, int, RgbImage> Generate)
{
    /// <summary>Target sizes this method can produce (null = all; a fine-tuned model only its own size).</summary>
    public IReadOnlySet<int>? Sizes { get; init; }
}

/// <summary>One row of the table: a method at one scale, all metrics over the prompts, each with its bootstrap 95 % interval
/// in <see cref="Intervals"/> (keys: <see cref="QualityBenchmark.MetricNames"/>). Repetition and consistency are NaN for the
/// base row (scale 1, compared with itself); prompt match is NaN without a caption classifier.</summary>
public sealed record QualityRow(
    string Method, int Scale, int Size, int Images,
    double MeanExtraObjects, double ShareWithExtraObjects,
    double BaseMse, double BasePsnr,
    double Fd, double Kid, double? PatchFd, double? PatchKid,
    double SpectrumHigh, double SpectrumAll,
    double SecondsPerImage, double PeakResidentMiB)
{
    public IReadOnlyDictionary<string, Interval> Intervals { get; init; } = new Dictionary<string, Interval>();
    /// <summary>Share of images classified as the caption their prompt names (top-1, top-5).</summary>
    public double PromptTop1 { get; init; } = double.NaN;
    public double PromptTop5 { get; init; } = double.NaN;
}

public sealed record QualityBenchmarkOptions
{
    /// <summary>The base (native) size in pixels; targets are Scale x this per side.</summary>
    public required int NativeSize { get; init; }
    public IReadOnlyList<int> Scales { get; init; } = [2, 4];
    public FidelityOptions Fidelity { get; init; } = new(KidSubsetSize: 50, KidSubsets: 50);
    public ComponentOptions Components { get; init; } = ComponentOptions.Default;
    /// <summary>Bootstrap resamples for every interval (0 = no intervals) and their seed.</summary>
    public int BootstrapResamples { get; init; } = 1000;
    public int BootstrapSeed { get; init; }
    /// <summary>KID subsets per bootstrap resample (the estimate itself uses <see cref="FidelityOptions.KidSubsets"/>).</summary>
    public int BootstrapKidSubsets { get; init; } = 10;
    /// <summary>Add a row for the base samples themselves (scale 1): their fidelity and prompt match.</summary>
    public bool BaseRow { get; init; }
}

/// <summary>Classifies images against prompt captions: for each image, the rank (0 = top) of its caption among the classes, or -1 when the caption is no class.</summary>
public interface IPromptClassifier
{
    int[] CaptionRanks(IReadOnlyList<RgbImage> images, IReadOnlyList<string> captions);
}

/// <summary>
/// The paper's comparison (§5, Table 1) on the project's own data: for each method and scale, repetition (extra
/// foreground objects against the base-size sample of the same prompt and seed), consistency with that base sample
/// (the FID_b idea, as MSE/PSNR after an antialiased downsample), fidelity (Fréchet distance and KID against real
/// renders at the same size, on whole images and on native-size crops, in a feature space trained on the renders),
/// detail (radially averaged power spectrum distance, high-frequency half) and cost (seconds per image, peak memory).
/// </summary>
public static class QualityBenchmark
{
    public static List<QualityRow> Run(QualityBenchmarkOptions options, IReadOnlyList<QualityPrompt> prompts, Func<QualityPrompt, RgbImage> baseSample,
        Func<int, IReadOnlyList<RgbImage>> realAtSize, IReadOnlyList<QualityMethod> methods, IFeatureExtractor features,
        IProgress<string>? progress = null, Action<string, int, IReadOnlyList<RgbImage>>? keep = null,
        GeneratedImageStore? store = null, Action<QualityRow>? onRow = null, IPromptClassifier? classifier = null)
    {
        if (prompts.Count == 0) throw new ArgumentException("the benchmark needs at least one prompt");
        progress?.Report($"base samples ({prompts.Count})");
        var bases = prompts.Select((p, i) => Produce(store, "base", 1, i, p, () => baseSample(p)).Image).ToList();
        if (store is not null)
        {
            // Generate prompt by prompt (every method for prompt 0, then prompt 1, ...), scale by scale: a run stopped
            // early leaves the first N prompts done for every method, a fair comparison on N prompts (rerun with N).
            foreach (var scale in options.Scales)
            {
                int size = options.NativeSize * scale;
                var active = methods.Where(m => m.Sizes is null || m.Sizes.Contains(size)).ToList();
                for (int i = 0; i < prompts.Count; i++)
                {
                    progress?.Report($"x{scale}: prompt {i + 1}/{prompts.Count}");
                    foreach (var method in active) Produce(store, method.Name, scale, i, prompts[i], () => method.Generate(prompts[i], size));
                }
            }
        }
        keep?.Invoke("base", 1, bases);
        var rows = new List<QualityRow>();
        if (options.BaseRow)
        {
            progress?.Report($"base x1 ({options.NativeSize}px, {prompts.Count} images)");
            var real = realAtSize(options.NativeSize);
            var cost = prompts.Select((p, i) => Produce(store, "base", 1, i, p, () => baseSample(p))).ToList();
            rows.Add(Measure(options, "base", 1, bases, bases, prompts, real, PowerSpectrum.MeanRadial(real), features, classifier,
                cost.Average(c => c.Seconds), cost.Max(c => c.PeakMiB), isBase: true));
            onRow?.Invoke(rows[^1]);
        }
        foreach (var scale in options.Scales)
        {
            int size = options.NativeSize * scale;
            var real = realAtSize(size);
            var realSpectrum = PowerSpectrum.MeanRadial(real);
            foreach (var method in methods)
            {
                if (method.Sizes is not null && !method.Sizes.Contains(size)) continue;
                progress?.Report($"{method.Name} x{scale} ({size}px, {prompts.Count} images)");
                var images = new List<RgbImage>();
                double seconds = 0, peak = 0;
                for (int i = 0; i < prompts.Count; i++)
                {
                    var (img, s, pk) = Produce(store, method.Name, scale, i, prompts[i], () => method.Generate(prompts[i], size));
                    seconds += s;
                    peak = Math.Max(peak, pk);
                    if (img.Width != size || img.Height != size)
                        throw new InvalidOperationException($"{method.Name} returned {img.Width}x{img.Height}, expected {size}x{size}");
                    images.Add(img);
                }
                keep?.Invoke(method.Name, scale, images);
                rows.Add(Measure(options, method.Name, scale, images, bases, prompts, real, realSpectrum, features, classifier, seconds / prompts.Count, peak, isBase: false));
                onRow?.Invoke(rows[^1]);
            }
        }
        return rows;
    }

    /// <summary>The metric names of <see cref="QualityRow.Intervals"/>, in table order.</summary>
    public static readonly IReadOnlyList<string> MetricNames =
        ["extra", "share_extra", "mse", "psnr", "fd", "kid", "patch_fd", "patch_kid", "spectrum_high", "top1", "top5", "seconds"];

    /// <summary>
    /// Every metric of one row from per-image quantities, then the same statistics on bootstrap resamples of the
    /// prompts (generated images resampled, paired with their base samples and captions; the real set fixed).
    /// </summary>
    private static QualityRow Measure(QualityBenchmarkOptions options, string name, int scale, IReadOnlyList<RgbImage> images, IReadOnlyList<RgbImage> bases,
        IReadOnlyList<QualityPrompt> prompts, IReadOnlyList<RgbImage> real, double[] realSpectrum, IFeatureExtractor features,
        IPromptClassifier? classifier, double secondsPerImage, double peak, bool isBase)
    {
        using var scope = NewDisposeScope();
        int n = images.Count, native = options.NativeSize;
        var fo = options.Fidelity with { PatchSize = native };
        double[] extra = isBase ? Nan(n) : images.Zip(bases).Select(p => (double)RepetitionMetric.Compare(p.First, p.Second, options.Components).ExtraObjects).ToArray();
        double[] mse = isBase ? Nan(n) : images.Zip(bases).Select(p => BaseConsistency.Measure(p.First, p.Second, withSsim: false).Mse).ToArray();
        var spectra = images.Select(img => PowerSpectrum.Radial(img)).ToArray();
        double[] ranks = classifier is null ? Nan(n) : classifier.CaptionRanks(images, prompts.Select(p => p.Caption).ToList()).Select(r => r < 0 ? double.NaN : r).ToArray();

        // Features: whole images, and native-size grid crops with the image each crop came from.
        var fr = features.Extract(real);
        var fg = features.Extract(images);
        using var realStats = FeatureStatistics.FromFeatures(fr);
        bool patches = images[0].Width > native;
        Tensor? frp = null, fgp = null;
        int[][] cropsOf = [];
        if (patches)
        {
            frp = features.Extract(ImageCrops.GridFromSet(real, native));
            var perImage = images.Select(img => ImageCrops.Grid(img, native)).ToList();
            fgp = features.Extract(perImage.SelectMany(c => c).ToList());
            cropsOf = new int[perImage.Count][];
            for (int i = 0, next = 0; i < perImage.Count; next += perImage[i].Count, i++) cropsOf[i] = Enumerable.Range(next, perImage[i].Count).ToArray();
        }
        using var realPatchStats = frp is null ? null : FeatureStatistics.FromFeatures(frp);

        double Fd(int[] idx) { using var s = NewDisposeScope(); using var g = FeatureStatistics.FromFeatures(fg.index_select(0, Idx(idx))); return FrechetDistance.Compute(realStats, g); }
        double Kid(int[] idx, int subsets) { using var s = NewDisposeScope(); return KernelInceptionDistance.Compute(fr, fg.index_select(0, Idx(idx)), fo.KidSubsetSize, subsets, fo.Seed).Mean; }
        Tensor PatchIdx(int[] idx) => Idx(idx.SelectMany(i => cropsOf[i]).ToArray());
        double PatchFd(int[] idx) { using var s = NewDisposeScope(); using var g = FeatureStatistics.FromFeatures(fgp!.index_select(0, PatchIdx(idx))); return FrechetDistance.Compute(realPatchStats!, g); }
        double PatchKid(int[] idx, int subsets) { using var s = NewDisposeScope(); return KernelInceptionDistance.Compute(frp!, fgp!.index_select(0, PatchIdx(idx)), fo.KidSubsetSize, subsets, fo.Seed + 2).Mean; }
        double Spectrum(int[] idx)
        {
            var mean = new double[realSpectrum.Length];
            foreach (var i in idx) for (int b = 0; b < mean.Length; b++) mean[b] += spectra[i][b] / idx.Length;
            return PowerSpectrum.Distance(mean, realSpectrum).HighFrequency;
        }
        double Share(int[] idx, Func<double, bool> test) => idx.Count(i => test(extra[i])) / (double)idx.Length;

        var statistics = new Dictionary<string, (Func<int[], double> Estimate, Func<int[], double> Resampled)>
        {
            ["extra"] = (i => Bootstrap.MeanAt(extra, i), i => Bootstrap.MeanAt(extra, i)),
            ["share_extra"] = (i => isBase ? double.NaN : Share(i, e => e > 0), i => isBase ? double.NaN : Share(i, e => e > 0)),
            ["mse"] = (i => Bootstrap.MeanAt(mse, i), i => Bootstrap.MeanAt(mse, i)),
            ["psnr"] = (i => ImageError.Psnr(Bootstrap.MeanAt(mse, i)), i => ImageError.Psnr(Bootstrap.MeanAt(mse, i))),
            ["fd"] = (Fd, Fd),
            ["kid"] = (i => Kid(i, fo.KidSubsets), i => Kid(i, options.BootstrapKidSubsets)),
            ["patch_fd"] = (i => patches ? PatchFd(i) : double.NaN, i => patches ? PatchFd(i) : double.NaN),
            ["patch_kid"] = (i => patches ? PatchKid(i, fo.KidSubsets) : double.NaN, i => patches ? PatchKid(i, options.BootstrapKidSubsets) : double.NaN),
            ["spectrum_high"] = (Spectrum, Spectrum),
            ["top1"] = (i => RankShare(ranks, i, 1), i => RankShare(ranks, i, 1)),
            ["top5"] = (i => RankShare(ranks, i, 5), i => RankShare(ranks, i, 5)),
            ["seconds"] = (_ => secondsPerImage, _ => double.NaN),
        };
        var identity = Enumerable.Range(0, n).ToArray();
        var resamples = options.BootstrapResamples > 0 ? Bootstrap.Resamples(n, options.BootstrapResamples, options.BootstrapSeed) : [];
        var intervals = new Dictionary<string, Interval>();
        foreach (var (key, (estimate, resampled)) in statistics)
        {
            var point = estimate(identity);
            if (resamples.Length == 0 || double.IsNaN(point)) { intervals[key] = new Interval(point, double.NaN, double.NaN); continue; }
            var ci = Bootstrap.Percentile(identity, resamples, resampled);
            intervals[key] = new Interval(point, ci.Low, ci.High);
        }
        var spectrumAll = PowerSpectrum.Distance(PowerSpectrum.MeanRadial(images), realSpectrum).AllBins;
        return new QualityRow(name, scale, images[0].Width, n,
            intervals["extra"].Estimate, intervals["share_extra"].Estimate, intervals["mse"].Estimate, intervals["psnr"].Estimate,
            intervals["fd"].Estimate, intervals["kid"].Estimate, patches ? intervals["patch_fd"].Estimate : null, patches ? intervals["patch_kid"].Estimate : null,
            intervals["spectrum_high"].Estimate, spectrumAll, secondsPerImage, peak)
        {
            Intervals = intervals, PromptTop1 = intervals["top1"].Estimate, PromptTop5 = intervals["top5"].Estimate,
        };
    }

    private static double[] Nan(int n) => Enumerable.Repeat(double.NaN, n).ToArray();
    private static Tensor Idx(int[] idx) => tensor(idx.Select(i => (long)i).ToArray());

    /// <summary>Share of the chosen images whose caption ranks within the top k (images without a caption class are left out).</summary>
    private static double RankShare(double[] ranks, int[] idx, int k)
    {
        int known = 0, hit = 0;
        foreach (var i in idx)
        {
            if (double.IsNaN(ranks[i])) continue;
            known++;
            if (ranks[i] < k) hit++;
        }
        return known == 0 ? double.NaN : hit / (double)known;
    }

    /// <summary>One image: from the store when it holds it (with its recorded cost), else generated, timed and stored.</summary>
    private static (RgbImage Image, double Seconds, double PeakMiB) Produce(GeneratedImageStore? store, string method, int scale, int index,
        QualityPrompt prompt, Func<RgbImage> generate)
    {
        if (store?.TryLoad(method, scale, index, prompt) is { } stored) return stored;
        ResidentMemory.ResetPeak();
        var sw = Stopwatch.StartNew();
        var img = generate();
        double seconds = sw.Elapsed.TotalSeconds, peak = ResidentMemory.PeakMiB();
        store?.Save(method, scale, index, prompt, img, seconds, peak);
        return (img, seconds, peak);
    }

    /// <summary>The table: each metric as "estimate [low, high]" (bootstrap 95 % percentile interval over the prompts).</summary>
    public static string ToMarkdown(IReadOnlyList<QualityRow> rows)
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("| method | scale | size | images | extra objects (mean) ↓ | share with extra ↓ | MSE to base ↓ | PSNR to base ↑ | FD ↓ | KID ↓ | patch FD ↓ | patch KID ↓ | spectrum dist. (high) ↓ | prompt match top-1 ↑ | prompt match top-5 ↑ | s / image | peak RSS (MiB) |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in rows)
        {
            string C(string key, string format, double? fallback = null)
            {
                if (!r.Intervals.TryGetValue(key, out var v)) v = new Interval(fallback ?? double.NaN, double.NaN, double.NaN);
                if (double.IsNaN(v.Estimate)) return "-";
                var text = format == "P0" ? (v.Estimate * 100).ToString("F0", ci) + " %" : v.Estimate.ToString(format, ci);
                if (double.IsNaN(v.Low)) return text;
                return format == "P0"
                    ? string.Create(ci, $"{text} [{v.Low * 100:F0}, {v.High * 100:F0}]")
                    : $"{text} [{v.Low.ToString(format, ci)}, {v.High.ToString(format, ci)}]";
            }
            sb.AppendLine(string.Create(ci,
                $"| {r.Method} | x{r.Scale} | {r.Size} | {r.Images} | {C("extra", "F2", r.MeanExtraObjects)} | {C("share_extra", "P0", r.ShareWithExtraObjects)} | {C("mse", "F4", r.BaseMse)} | {C("psnr", "F1", r.BasePsnr)} | {C("fd", "F2", r.Fd)} | {C("kid", "F3", r.Kid)} | {C("patch_fd", "F2", r.PatchFd)} | {C("patch_kid", "F3", r.PatchKid)} | {C("spectrum_high", "F3", r.SpectrumHigh)} | {C("top1", "P0", r.PromptTop1)} | {C("top5", "P0", r.PromptTop5)} | {r.SecondsPerImage:F2} | {r.PeakResidentMiB:F0} |"));
        }
        return sb.ToString();
    }

    private static string Fmt(double? v, string format) => v is double d ? d.ToString(format, CultureInfo.InvariantCulture) : "-";
}

/// <summary>Linux VmHWM (peak resident set), resettable through /proc/self/clear_refs ("5"); elsewhere the process peak.</summary>
public static class ResidentMemory
{
    public static double PeakMiB()
    {
        if (!File.Exists("/proc/self/status")) return Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0;
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return double.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
        return double.NaN;
    }

    public static void ResetPeak()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
