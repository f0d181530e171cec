namespace SelfCascade.Data;

/// <summary>What <see cref="DatasetBuilder.Build"/> fetches and renders, and where.</summary>
public sealed record DatasetOptions
{
    public static readonly IReadOnlyList<int> DefaultSizes = [32, 64, 128, 256];
    public static readonly IReadOnlyList<string> DefaultSets = ["fluent-emoji-flat", "noto"];

    /// <summary>Dataset root: sources/ (npm cache), render/, manifest.json, DATASET_CARD.md.</summary>
    public required string OutputDir { get; init; }
    public IReadOnlyList<int> Sizes { get; init; } = DefaultSizes;
    /// <summary>@iconify-json sets as NAME or NAME@VERSION (pinned versions: <see cref="IconifyPackageFetcher.PinnedVersions"/>).</summary>
    public IReadOnlyList<string> Sets { get; init; } = DefaultSets;
    /// <summary>Local icons.json files (offline); when given, they replace <see cref="Sets"/> and nothing is fetched.</summary>
    public IReadOnlyList<string> IconsJsonFiles { get; init; } = [];
    /// <summary>Render only the first N designs (ordinal name order) of each set.</summary>
    public int? Limit { get; init; }
    public string NpmCommand { get; init; } = "npm";
    public int MaxParallelism { get; init; } = Environment.ProcessorCount;
}

/// <summary>Progress of a build: Phase is "fetch", "render" or "write".</summary>
public sealed record DatasetProgress(string Phase, int Done, int Total, string? Item)
{
    public double Fraction => Total <= 0 ? 1 : (double)Done / Total;
}
