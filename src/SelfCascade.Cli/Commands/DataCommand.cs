using System.CommandLine;
using System.Globalization;
using SelfCascade.Data;

namespace SelfCascade.Cli.Commands;

/// <summary>
/// `selfcascade data`: fetch the openly licensed emoji sets (npm), render them at several sizes with captions,
/// split train/validation/test, and write manifest.json and DATASET_CARD.md (see <see cref="DatasetBuilder"/>).
/// </summary>
public static class DataCommand
{
    public static Command Create(CliConsole console)
    {
        var output = new Option<string>("--out") { Description = "Dataset folder (keep it outside git)", DefaultValueFactory = _ => "data" };
        var sizes = new Option<string>("--sizes") { Description = "Square image sizes in pixels, comma-separated", DefaultValueFactory = _ => "32,64,128,256" };
        var sets = new Option<string>("--sets")
        {
            Description = "@iconify-json sets as NAME or NAME@VERSION, comma-separated (pinned: fluent-emoji-flat@1.2.6, noto@1.2.9)",
            DefaultValueFactory = _ => string.Join(',', DatasetOptions.DefaultSets),
        };
        var limit = new Option<int?>("--limit") { Description = "Render only the first N designs of each set (quick tests)" };
        var iconsJson = new Option<string[]>("--icons-json")
        {
            Description = "Local Iconify icons.json files instead of fetching (repeatable or comma-separated; info.json beside each is read)",
            AllowMultipleArgumentsPerToken = false,
        };
        var cmd = new Command("data", "Build the emoji text-to-image dataset: fetch Iconify emoji sets, render PNGs with captions, split, and document licences")
        {
            output, sizes, sets, limit, iconsJson,
        };
        cmd.SetAction(p => console.Guard(p.GetValue(CliApp.LibTorchOption), () =>
        {
            var options = new DatasetOptions
            {
                OutputDir = p.GetValue(output)!,
                Sizes = ParseSizes(p.GetValue(sizes)!),
                Sets = SplitList(p.GetValue(sets)),
                IconsJsonFiles = (p.GetValue(iconsJson) ?? []).SelectMany(v => SplitList(v)).ToList(),
                Limit = p.GetValue(limit),
            };
            var progress = console.Progress<DatasetProgress>(d => (d.Fraction, d.Item is null ? d.Phase : $"{d.Phase} {d.Item}"));
            var summary = DatasetBuilder.Build(options, progress, console.Cancellation);
            Print(console.Out, summary);
            if (summary.Rendered == 0)
            {
                console.Error.WriteLine($"error: no design rendered ({summary.BrokenCount} broken); see {summary.CardPath}");
                return 1;
            }
            return 0;
        }));
        return cmd;
    }

    public static IReadOnlyList<int> ParseSizes(string text) => SplitList(text).Select(s =>
        int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v > 0
            ? v
            : throw new ArgumentException($"--sizes: '{s}' is not a positive whole number of pixels")).ToList();

    private static List<string> SplitList(string? text) =>
        (text ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();

    private static void Print(TextWriter w, DatasetSummary s)
    {
        w.WriteLine($"{s.OutputDir}");
        foreach (var set in s.Sets)
            w.WriteLine($"  {set.Set} ({set.Info.LicenseSpdx ?? "licence unknown"}, {set.Source}): {set.Icons} icons, {set.Aliases} aliases -> " +
                        $"{set.Designs} designs ({set.ToneVariantsDropped} tone variants dropped, {set.PlainAliasesSkipped} plain aliases skipped); " +
                        $"rendered {set.Rendered}, broken {set.Broken.Count}");
        w.WriteLine($"  splits: train {s.Count(Split.Train)}, validation {s.Count(Split.Validation)}, test {s.Count(Split.Test)}");
        w.WriteLine($"  sizes: {string.Join(", ", s.Sizes)} px; {s.ImageCount} images");
        w.WriteLine($"  fetch {s.FetchTime.TotalSeconds:F1} s, render {s.RenderTime.TotalSeconds:F1} s");
        w.WriteLine($"  manifest: {s.ManifestPath}");
        w.WriteLine($"  card: {s.CardPath}");
    }
}
