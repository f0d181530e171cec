using System.Collections.Concurrent;
using System.Diagnostics;

namespace SelfCascade.Data;

/// <summary>
/// Builds the emoji text-to-image dataset: fetch (or read) Iconify sets, select designs (<see cref="DesignSelector"/>),
/// render each at every size (<see cref="IconRenderer"/>) to <c>render/{size}/{split}/{set}__{name}.png</c> with the
/// caption in a <c>.txt</c> beside it, then write manifest.json and DATASET_CARD.md. A design that fails to render
/// is counted and skipped, never fatal. render/ is owned by the builder and recreated on every run.
/// </summary>
public static class DatasetBuilder
{
    public static DatasetSummary Build(DatasetOptions options, IProgress<DatasetProgress>? progress = null, CancellationToken cancellation = default)
    {
        var sizes = ValidateSizes(options.Sizes);
        if (options.Limit is <= 0) throw new ArgumentException($"--limit must be positive, got {options.Limit}");
        var root = Path.GetFullPath(options.OutputDir);
        Directory.CreateDirectory(root);

        var clock = Stopwatch.StartNew();
        var sources = LoadSources(options, root, progress, cancellation);
        var fetchTime = clock.Elapsed;

        var selections = sources.Select(s => (s.Files, s.Set, Selection: DesignSelector.Select(s.Set))).ToList();
        var work = selections
            .SelectMany(s => (options.Limit is int n ? s.Selection.Designs.Take(n) : s.Selection.Designs).Select(d => (s.Set, Design: d)))
            .ToList();

        clock.Restart();
        var render = Path.Combine(root, "render");
        if (Directory.Exists(render)) Directory.Delete(render, recursive: true);
        var rendered = new ConcurrentBag<DatasetEntry>();
        var broken = new ConcurrentBag<BrokenIcon>();
        int done = 0;
        var progressLock = new object();
        Parallel.ForEach(work, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, options.MaxParallelism), CancellationToken = cancellation }, item =>
        {
            var (set, design) = item;
            try
            {
                var (svg, w, h) = set.ToSvg(design.Name);
                var images = IconRenderer.Render(svg, w, h, sizes);
                for (int i = 0; i < sizes.Count; i++)
                {
                    var png = Path.Combine(root, DatasetSummary.ImagePath(sizes[i], design.Split, design.Id));
                    images[i].SavePng(png);
                    File.WriteAllText(Path.ChangeExtension(png, ".txt"), design.Caption);
                }
                rendered.Add(new DatasetEntry(design.Id, design.Set, design.Name, design.Caption, design.Split, LicenseOf(set.Info)));
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                broken.Add(new BrokenIcon(design.Set, design.Name, OneLine(e.Message)));
            }
            int now = Interlocked.Increment(ref done);
            if (progress != null) lock (progressLock) progress.Report(new DatasetProgress("render", now, work.Count, design.Id));
        });
        var renderTime = clock.Elapsed;

        progress?.Report(new DatasetProgress("write", 0, 1, null));
        var entries = rendered.OrderBy(e => e.Set, StringComparer.Ordinal).ThenBy(e => e.Name, StringComparer.Ordinal).ToList();
        var setSummaries = selections.Select(s =>
        {
            var setBroken = broken.Where(b => b.Set == s.Set.Prefix).OrderBy(b => b.Name, StringComparer.Ordinal).ToList();
            return new SetSummary(s.Set.Prefix, s.Files.Version, SourceOf(s.Files), s.Set.Info, s.Selection.Icons, s.Selection.Aliases,
                s.Selection.ToneVariantsDropped, s.Selection.PlainAliasesSkipped, s.Selection.Designs.Count,
                entries.Count(e => e.Set == s.Set.Prefix), setBroken);
        }).ToList();
        var summary = new DatasetSummary(root, sizes, setSummaries, entries, fetchTime, renderTime,
            Path.Combine(root, "manifest.json"), Path.Combine(root, "DATASET_CARD.md"));
        DatasetManifest.Write(summary, options.Limit);
        File.WriteAllText(summary.CardPath, DatasetCard.Markdown(summary, options.Limit));
        progress?.Report(new DatasetProgress("write", 1, 1, null));
        return summary;
    }

    private static List<(IconSetFiles Files, IconifySet Set)> LoadSources(DatasetOptions options, string root,
        IProgress<DatasetProgress>? progress, CancellationToken cancellation)
    {
        var files = new List<IconSetFiles>();
        if (options.IconsJsonFiles.Count > 0)
        {
            foreach (var path in options.IconsJsonFiles)
                files.Add(new IconSetFiles(Set: "", Version: null, Path.GetFullPath(path), InfoJson: null, FromCache: true));
        }
        else
        {
            if (options.Sets.Count == 0) throw new ArgumentException("no icon sets named (--sets) and no --icons-json files");
            var fetcher = new IconifyPackageFetcher(Path.Combine(root, "sources"), options.NpmCommand);
            var specs = options.Sets.Select(IconifyPackageFetcher.ParseSpec).ToList();
            for (int i = 0; i < specs.Count; i++)
            {
                cancellation.ThrowIfCancellationRequested();
                progress?.Report(new DatasetProgress("fetch", i, specs.Count, specs[i].Set));
                files.Add(fetcher.Fetch(specs[i].Set, specs[i].Version, cancellation));
            }
            progress?.Report(new DatasetProgress("fetch", specs.Count, specs.Count, null));
        }
        var sets = files.Select(f => (Files: f, Set: IconifySet.Load(f.IconsJson, f.InfoJson))).ToList();
        var duplicate = sets.GroupBy(s => s.Set.Prefix).FirstOrDefault(g => g.Count() > 1);
        if (duplicate != null) throw new ArgumentException($"icon set '{duplicate.Key}' is given more than once");
        return sets;
    }

    private static List<int> ValidateSizes(IReadOnlyList<int> sizes)
    {
        if (sizes.Count == 0) throw new ArgumentException("no image sizes given");
        foreach (var s in sizes)
            if (s is < 8 or > 4096) throw new ArgumentException($"image size {s} is outside 8..4096");
        return sizes.Distinct().Order().ToList();
    }

    internal static string LicenseOf(IconifyInfo info) => info.LicenseSpdx ?? info.LicenseTitle ?? "unknown";

    private static string SourceOf(IconSetFiles f) =>
        f.Version is null ? f.IconsJson : $"npm:{IconifyPackageFetcher.PackageName(f.Set)}@{f.Version}";

    private static string OneLine(string message) =>
        string.Join(" ", message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
