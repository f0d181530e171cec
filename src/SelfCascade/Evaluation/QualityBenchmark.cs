using System.Diagnostics;
using System.Globalization;
using System.Text;
using SelfCascade.Imaging;

namespace SelfCascade.Evaluation;

/// <summary>One prompt of the benchmark: a test-split design's caption, a fixed seed, and its real renders by size.</summary>
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

/// <summary>One row of the table: a method at one scale, all metrics over the prompts.</summary>
public sealed record QualityRow(
    string Method, int Scale, int Size, int Images,
    double MeanExtraObjects, double ShareWithExtraObjects,
    double BaseMse, double BasePsnr,
    double Fd, double Kid, double? PatchFd, double? PatchKid,
    double SpectrumHigh, double SpectrumAll,
    double SecondsPerImage, double PeakResidentMiB);

public sealed record QualityBenchmarkOptions
{
    /// <summary>The base (native) size in pixels; targets are Scale x this per side.</summary>
    public required int NativeSize { get; init; }
    public IReadOnlyList<int> Scales { get; init; } = [2, 4];
    public FidelityOptions Fidelity { get; init; } = new(KidSubsetSize: 50, KidSubsets: 50);
    public ComponentOptions Components { get; init; } = ComponentOptions.Default;
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
        IProgress<string>? progress = null, Action<string, int, IReadOnlyList<RgbImage>>? keep = null)
    {
        if (prompts.Count == 0) throw new ArgumentException("the benchmark needs at least one prompt");
        progress?.Report($"base samples ({prompts.Count})");
        var bases = prompts.Select(baseSample).ToList();
        keep?.Invoke("base", 1, bases);
        var rows = new List<QualityRow>();
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
                foreach (var p in prompts)
                {
                    ResidentMemory.ResetPeak();
                    var sw = Stopwatch.StartNew();
                    var img = method.Generate(p, size);
                    seconds += sw.Elapsed.TotalSeconds;
                    peak = Math.Max(peak, ResidentMemory.PeakMiB());
                    if (img.Width != size || img.Height != size)
                        throw new InvalidOperationException($"{method.Name} returned {img.Width}x{img.Height}, expected {size}x{size}");
                    images.Add(img);
                }
                keep?.Invoke(method.Name, scale, images);
                var repetition = RepetitionMetric.Evaluate(images.Zip(bases), options.Components);
                var consistency = BaseConsistency.Evaluate(images.Zip(bases), withSsim: false);
                var fidelity = FidelityMetrics.Compare(features, real, images,
                    options.Fidelity with { PatchSize = options.NativeSize });
                var spectrum = PowerSpectrum.Distance(PowerSpectrum.MeanRadial(images), realSpectrum);
                rows.Add(new QualityRow(method.Name, scale, size, images.Count,
                    repetition.MeanExtraObjects, repetition.ShareWithExtraObjects,
                    consistency.MeanMse, consistency.PsnrOfMeanMse,
                    fidelity.Fd, fidelity.Kid.Mean, fidelity.PatchFd, fidelity.PatchKid?.Mean,
                    spectrum.HighFrequency, spectrum.AllBins, seconds / prompts.Count, peak));
            }
        }
        return rows;
    }

    public static string ToMarkdown(IReadOnlyList<QualityRow> rows)
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("| method | scale | size | images | extra objects (mean) | share with extra | MSE to base ↓ | PSNR to base ↑ | FD ↓ | KID ↓ | patch FD ↓ | patch KID ↓ | spectrum dist. (high) ↓ | s / image | peak RSS (MiB) |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in rows)
            sb.AppendLine(string.Create(ci,
                $"| {r.Method} | x{r.Scale} | {r.Size} | {r.Images} | {r.MeanExtraObjects:F2} | {r.ShareWithExtraObjects:P0} | {r.BaseMse:F4} | {r.BasePsnr:F1} | {r.Fd:F2} | {r.Kid:F3} | {Fmt(r.PatchFd, "F2")} | {Fmt(r.PatchKid, "F3")} | {r.SpectrumHigh:F3} | {r.SecondsPerImage:F2} | {r.PeakResidentMiB:F0} |"));
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
