using System.Globalization;
using System.Text;

namespace SelfCascade.Evaluation.PromptGrid;

/// <summary>One image pair classified: each image's top-1 class and the rank (0 = top) of its prompt among the classes; rank -1 = the prompt is no class.</summary>
public sealed record PromptGridScore(PromptGridCell Cell, string NativeTop1, string CascadeTop1, int NativeRank, int CascadeRank)
{
    public bool IsClass => NativeRank >= 0;
}

/// <summary>Prompt-match counts over the images whose prompt is a class: top-1 and top-5 hits.</summary>
public sealed record PromptMatchCount(int Images, int Top1, int Top5)
{
    public static PromptMatchCount Of(IEnumerable<int> ranks)
    {
        var known = ranks.Where(r => r >= 0).ToList();
        return new PromptMatchCount(known.Count, known.Count(r => r == 0), known.Count(r => r < 5));
    }
}

/// <summary>
/// The prompt grid's report: per image the feature network's top-1 class for the native and the cascade image, and
/// prompt-match accuracy for both over the prompts that are classes of the network (others are listed as "not a
/// class" and left out, never counted wrong), with the chance levels 1/K and min(5, K)/K.
/// </summary>
public sealed class PromptGridReport
{
    public required IReadOnlyList<PromptGridScore> Scores { get; init; }
    public required int ClassCount { get; init; }
    public PromptMatchCount Native => PromptMatchCount.Of(Scores.Select(s => s.NativeRank));
    public PromptMatchCount Cascade => PromptMatchCount.Of(Scores.Select(s => s.CascadeRank));
    /// <summary>Distinct prompts that are not classes of the network, in order.</summary>
    public IReadOnlyList<string> NotClasses => Scores.Where(s => !s.IsClass).Select(s => s.Cell.Prompt).Distinct(StringComparer.Ordinal).ToList();

    /// <summary>Classifies every native and cascade image with a feature network that carries class names.</summary>
    public static PromptGridReport Score(PromptGridImages images, FeatureNetExtractor classifier)
    {
        var names = classifier.Net.ClassNames ?? throw new InvalidOperationException("the feature network has no class names: no prompt match (train it with `selfcascade train-feature-net`)");
        var prompts = images.Cells.Select(c => c.Prompt).ToList();
        var native = images.Cells.Select(c => c.Native).ToList();
        var cascade = images.Cells.Select(c => c.Cascade).ToList();
        var nativeTop = classifier.TopClasses(native);
        var cascadeTop = classifier.TopClasses(cascade);
        var nativeRanks = classifier.CaptionRanks(native, prompts);
        var cascadeRanks = classifier.CaptionRanks(cascade, prompts);
        return new PromptGridReport
        {
            ClassCount = names.Count,
            Scores = images.Cells.Select((c, i) => new PromptGridScore(c, nativeTop[i], cascadeTop[i], nativeRanks[i], cascadeRanks[i])).ToList(),
        };
    }

    /// <summary>The report as markdown: <paramref name="header"/>, the per-image table, the accuracy table (without a report: the images only).</summary>
    public static string Markdown(PromptGridImages images, PromptGridReport? report, string header)
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(header);
        sb.AppendLine();
        string nat = $"native {images.NativeSize} px", cas = $"cascade {images.Size} px";
        if (report is null)
        {
            sb.AppendLine("| prompt | seed | seconds |");
            sb.AppendLine("|---|---|---|");
            foreach (var c in images.Cells) sb.AppendLine(string.Create(ci, $"| {Cell(c.Prompt)} | {c.Seed} | {c.Seconds:F1} |"));
            sb.AppendLine();
            sb.AppendLine("No feature network with class names was given: prompt match not measured.");
            return sb.ToString();
        }
        sb.AppendLine($"| prompt | seed | {nat} top-1 | {cas} top-1 | {nat} match | {cas} match |");
        sb.AppendLine("|---|---|---|---|---|---|");
        foreach (var s in report.Scores)
            sb.AppendLine(string.Create(ci,
                $"| {Cell(s.Cell.Prompt)} | {s.Cell.Seed} | {Cell(s.NativeTop1)} | {Cell(s.CascadeTop1)} | {Match(s.NativeRank)} | {Match(s.CascadeRank)} |"));
        sb.AppendLine();
        int k = report.ClassCount;
        var n = report.Native;
        sb.AppendLine(string.Create(ci,
            $"Prompt match (the feature network's top-1/top-5 class is the prompt) over {n.Images} images whose prompt is one of its {k} classes; chance: top-1 {Percent(1, k)}, top-5 {Percent(Math.Min(5, k), k)}."));
        sb.AppendLine();
        sb.AppendLine("| images | top-1 | top-5 |");
        sb.AppendLine("|---|---|---|");
        foreach (var (name, m) in new[] { (nat, report.Native), (cas, report.Cascade) })
            sb.AppendLine(string.Create(ci, $"| {name} | {m.Top1}/{m.Images} ({Percent(m.Top1, m.Images)}) | {m.Top5}/{m.Images} ({Percent(m.Top5, m.Images)}) |"));
        if (report.NotClasses.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine($"Not a class of the feature network (left out of the accuracy): {string.Join(", ", report.NotClasses.Select(p => $"\"{p}\""))}.");
        }
        return sb.ToString();
    }

    private static string Match(int rank) => rank < 0 ? "not a class" : rank == 0 ? "yes" : string.Create(CultureInfo.InvariantCulture, $"no (rank {rank + 1})");

    private static string Percent(int hits, int total) =>
        total == 0 ? "-" : (100.0 * hits / total).ToString("F1", CultureInfo.InvariantCulture) + " %";

    /// <summary>Text safe inside a markdown table cell.</summary>
    private static string Cell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal).Replace('\n', ' ');
}
