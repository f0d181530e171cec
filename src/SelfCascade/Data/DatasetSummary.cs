namespace SelfCascade.Data;

/// <summary>A design that could not be rendered, and why.</summary>
public sealed record BrokenIcon(string Set, string Name, string Reason);

/// <summary>A rendered design, as listed in manifest.json.</summary>
public sealed record DatasetEntry(string Id, string Set, string Name, string Caption, Split Split, string License);

/// <summary>What one icon set contributed.</summary>
public sealed record SetSummary(string Set, string? Version, string Source, IconifyInfo Info, int Icons, int Aliases,
    int ToneVariantsDropped, int PlainAliasesSkipped, int Designs, int Rendered, IReadOnlyList<BrokenIcon> Broken);

/// <summary>The result of <see cref="DatasetBuilder.Build"/>.</summary>
public sealed record DatasetSummary(string OutputDir, IReadOnlyList<int> Sizes, IReadOnlyList<SetSummary> Sets,
    IReadOnlyList<DatasetEntry> Entries, TimeSpan FetchTime, TimeSpan RenderTime, string ManifestPath, string CardPath)
{
    public int Rendered => Entries.Count;
    public int BrokenCount => Sets.Sum(s => s.Broken.Count);
    public int Count(Split split) => Entries.Count(e => e.Split == split);
    /// <summary>PNG files written: one per design and size.</summary>
    public int ImageCount => Entries.Count * Sizes.Count;

    /// <summary>Relative path of a design's image at one size: render/{size}/{split}/{set}__{name}.png.</summary>
    public static string ImagePath(int size, Split split, string id) =>
        Path.Combine("render", size.ToString(System.Globalization.CultureInfo.InvariantCulture), DatasetSplit.Name(split), id + ".png");
}
