using System.Text.Json;

namespace SelfCascade.Data;

/// <summary>Author and licence of an icon set, from Iconify's <c>info.json</c> (or the <c>info</c> block of a full icon set).</summary>
public sealed record IconifyInfo(string? Name, string? Author, string? AuthorUrl, string? LicenseTitle, string? LicenseSpdx, string? LicenseUrl)
{
    public static readonly IconifyInfo Unknown = new(null, null, null, null, null, null);

    public static IconifyInfo Parse(JsonElement info)
    {
        if (info.ValueKind != JsonValueKind.Object) return Unknown;
        var author = info.TryGetProperty("author", out var a) && a.ValueKind == JsonValueKind.Object ? a : default;
        var license = info.TryGetProperty("license", out var l) && l.ValueKind == JsonValueKind.Object ? l : default;
        return new IconifyInfo(Str(info, "name"), Str(author, "name"), Str(author, "url"),
            Str(license, "title"), Str(license, "spdx"), Str(license, "url"));
    }

    public static IconifyInfo Load(string infoJsonPath)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(infoJsonPath));
        return Parse(doc.RootElement);
    }

    private static string? Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}

/// <summary>One icon of a set: its SVG body and viewBox size (the set's default where the icon has none).</summary>
public sealed record IconifyIcon(string Body, double Width, double Height);

/// <summary>
/// An alias: another name for a parent icon, optionally flipped or turned in quarter turns (Iconify's
/// <c>hFlip</c>, <c>vFlip</c>, <c>rotate</c>); <c>width</c>/<c>height</c> override the parent's when given.
/// </summary>
public sealed record IconifyAlias(string Parent, bool HFlip, bool VFlip, int Rotate, double? Width, double? Height)
{
    public bool Transforms => HFlip || VFlip || Rotate % 4 != 0;
}

/// <summary>
/// An Iconify JSON icon set (the <c>icons.json</c> of an <c>@iconify-json/*</c> npm package): <c>prefix</c>,
/// <c>icons</c> (name -> body, width?, height?), default <c>width</c>/<c>height</c> (16 when absent, as Iconify
/// specifies), <c>aliases</c>, and <c>info</c> when the file carries it.
/// </summary>
public sealed class IconifySet
{
    public required string Prefix { get; init; }
    public required IReadOnlyDictionary<string, IconifyIcon> Icons { get; init; }
    public required IReadOnlyDictionary<string, IconifyAlias> Aliases { get; init; }
    public IconifyInfo Info { get; init; } = IconifyInfo.Unknown;

    /// <summary>Parses icons.json; <paramref name="info"/> (from info.json) wins over an embedded <c>info</c> block.</summary>
    public static IconifySet Parse(string json, IconifyInfo? info = null, string source = "icons.json")
    {
        using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true });
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("icons", out var icons) || icons.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{source}: not an Iconify icon set (no \"icons\" object)");
        var prefix = root.TryGetProperty("prefix", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString()! : null;
        if (string.IsNullOrWhiteSpace(prefix)) throw new InvalidDataException($"{source}: Iconify icon set has no \"prefix\"");
        double defW = Number(root, "width") ?? 16, defH = Number(root, "height") ?? 16;

        var parsed = new Dictionary<string, IconifyIcon>(StringComparer.Ordinal);
        foreach (var icon in icons.EnumerateObject())
        {
            if (icon.Value.ValueKind != JsonValueKind.Object) continue;
            var body = icon.Value.TryGetProperty("body", out var b) && b.ValueKind == JsonValueKind.String ? b.GetString()! : "";
            parsed[icon.Name] = new IconifyIcon(body, Number(icon.Value, "width") ?? defW, Number(icon.Value, "height") ?? defH);
        }
        var aliases = new Dictionary<string, IconifyAlias>(StringComparer.Ordinal);
        if (root.TryGetProperty("aliases", out var al) && al.ValueKind == JsonValueKind.Object)
            foreach (var a in al.EnumerateObject())
            {
                if (a.Value.ValueKind != JsonValueKind.Object || !a.Value.TryGetProperty("parent", out var parent) || parent.ValueKind != JsonValueKind.String) continue;
                aliases[a.Name] = new IconifyAlias(parent.GetString()!, Bool(a.Value, "hFlip"), Bool(a.Value, "vFlip"),
                    (int)(Number(a.Value, "rotate") ?? 0), Number(a.Value, "width"), Number(a.Value, "height"));
            }
        var embedded = root.TryGetProperty("info", out var i) ? IconifyInfo.Parse(i) : IconifyInfo.Unknown;
        return new IconifySet { Prefix = prefix, Icons = parsed, Aliases = aliases, Info = info ?? embedded };
    }

    /// <summary>Loads icons.json, with info.json beside it when present.</summary>
    public static IconifySet Load(string iconsJsonPath, string? infoJsonPath = null)
    {
        if (!File.Exists(iconsJsonPath)) throw new FileNotFoundException($"{iconsJsonPath}: icon set not found", iconsJsonPath);
        infoJsonPath ??= Path.Combine(Path.GetDirectoryName(Path.GetFullPath(iconsJsonPath))!, "info.json");
        var info = File.Exists(infoJsonPath) ? IconifyInfo.Load(infoJsonPath) : null;
        return Parse(File.ReadAllText(iconsJsonPath), info, iconsJsonPath);
    }

    /// <summary>Whether <paramref name="name"/> is an icon or an alias of this set.</summary>
    public bool Contains(string name) => Icons.ContainsKey(name) || Aliases.ContainsKey(name);

    /// <summary>
    /// The standalone SVG of an icon or alias: <c>&lt;svg xmlns viewBox="0 0 W H"&gt;BODY&lt;/svg&gt;</c>, an alias's
    /// flips and quarter turns applied as a group transform (as Iconify's iconToSVG does). Alias chains are followed;
    /// a chain that loops or ends at a missing icon throws.
    /// </summary>
    public (string Svg, double Width, double Height) ToSvg(string name)
    {
        bool h = false, v = false; int rotate = 0; double? w = null, ht = null;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var current = name;
        while (!Icons.ContainsKey(current))
        {
            if (!Aliases.TryGetValue(current, out var alias)) throw new KeyNotFoundException($"{Prefix}: no icon or alias '{current}'");
            if (!seen.Add(current)) throw new InvalidDataException($"{Prefix}: alias '{name}' loops");
            // The outer alias's transform applies after its parent's: flips combine by xor, turns add up.
            h ^= alias.HFlip; v ^= alias.VFlip; rotate += alias.Rotate;
            w ??= alias.Width; ht ??= alias.Height;
            current = alias.Parent;
        }
        var icon = Icons[current];
        return IconSvg.Wrap(icon.Body, w ?? icon.Width, ht ?? icon.Height, h, v, rotate);
    }

    private static double? Number(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;

    private static bool Bool(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.True;
}
