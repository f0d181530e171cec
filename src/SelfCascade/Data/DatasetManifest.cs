using System.Text.Json;

namespace SelfCascade.Data;

/// <summary>manifest.json: the sets with their licences and counts, and one entry per rendered design.</summary>
public static class DatasetManifest
{
    public const int FormatVersion = 1;

    // Relaxed escaping keeps captions readable (an apostrophe stays an apostrophe).
    private static readonly JsonSerializerOptions Options = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static void Write(DatasetSummary summary, int? limit)
    {
        var manifest = new
        {
            format = FormatVersion,
            sizes = summary.Sizes,
            limit_per_set = limit,
            split_rule = DatasetSplit.Rule,
            layout = "render/{size}/{split}/{set}__{name}.png with the caption in {set}__{name}.txt",
            counts = new
            {
                designs = summary.Rendered,
                train = summary.Count(Split.Train),
                validation = summary.Count(Split.Validation),
                test = summary.Count(Split.Test),
                broken = summary.BrokenCount,
                images = summary.ImageCount,
            },
            sets = summary.Sets.Select(s => new
            {
                set = s.Set,
                version = s.Version,
                source = s.Source,
                name = s.Info.Name,
                author = s.Info.Author,
                author_url = s.Info.AuthorUrl,
                license = new { spdx = s.Info.LicenseSpdx, title = s.Info.LicenseTitle, url = s.Info.LicenseUrl },
                icons = s.Icons,
                aliases = s.Aliases,
                tone_variants_dropped = s.ToneVariantsDropped,
                plain_aliases_skipped = s.PlainAliasesSkipped,
                designs = s.Designs,
                rendered = s.Rendered,
                broken = s.Broken.Select(b => new { name = b.Name, reason = b.Reason }),
            }),
            designs = summary.Entries.Select(e => new
            {
                id = e.Id,
                set = e.Set,
                name = e.Name,
                caption = e.Caption,
                split = DatasetSplit.Name(e.Split),
                license = e.License,
            }),
        };
        var tmp = summary.ManifestPath + ".tmp-" + Environment.ProcessId;
        File.WriteAllText(tmp, JsonSerializer.Serialize(manifest, Options));
        File.Move(tmp, summary.ManifestPath, overwrite: true);
    }

    /// <summary>Reads the design entries back (for training loaders and tests).</summary>
    public static IReadOnlyList<DatasetEntry> ReadEntries(string manifestPath)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(manifestPath));
        if (!doc.RootElement.TryGetProperty("designs", out var designs) || designs.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{manifestPath}: no \"designs\" array");
        return designs.EnumerateArray().Select(d => new DatasetEntry(
            d.GetProperty("id").GetString()!, d.GetProperty("set").GetString()!, d.GetProperty("name").GetString()!,
            d.GetProperty("caption").GetString()!, ParseSplit(d.GetProperty("split").GetString()!, manifestPath),
            d.GetProperty("license").GetString()!)).ToList();
    }

    private static Split ParseSplit(string s, string source) => s switch
    {
        "train" => Split.Train,
        "validation" => Split.Validation,
        "test" => Split.Test,
        _ => throw new InvalidDataException($"{source}: unknown split '{s}'"),
    };
}
