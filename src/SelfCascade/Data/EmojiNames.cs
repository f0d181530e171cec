using System.Text.RegularExpressions;

namespace SelfCascade.Data;

/// <summary>Captions and skin-tone variants from Iconify emoji names.</summary>
public static partial class EmojiNames
{
    /// <summary><c>grinning-face-with-big-eyes</c> -> "grinning face with big eyes" (dashes and underscores to spaces, lower case).</summary>
    public static string Caption(string name) =>
        string.Join(' ', name.ToLowerInvariant().Split(['-', '_', ' '], StringSplitOptions.RemoveEmptyEntries));

    /// <summary>
    /// Noto-style tone markers anywhere in a name: <c>-medium-light-skin-tone</c> (also mid-name, as in
    /// <c>man-light-skin-tone-bald</c>) and trailing <c>-tone1</c>..<c>-tone5</c>. A name that is only a tone
    /// (<c>medium-skin-tone</c>, the swatch emoji) is not a variant.
    /// </summary>
    [GeneratedRegex(@"(?:^|-)(?:medium-light|medium-dark|light|medium|dark)-skin-tone(?=-|$)|(?:-tone[1-5])+$")]
    private static partial Regex ExplicitTone();

    private static readonly HashSet<string> FluentToneWords = new(StringComparer.Ordinal) { "light", "medium", "dark" };

    /// <summary>
    /// The toneless design a skin-tone variant belongs to, or null when <paramref name="name"/> is not a variant.
    /// Explicit markers (Noto: <c>-dark-skin-tone</c>, <c>-tone3</c>) always mark a variant; Fluent's bare
    /// trailing words (<c>artist-medium-dark</c>) only when the set also has the toneless name, so that
    /// <c>vertical-traffic-light</c> stays a design of its own.
    /// <paramref name="Explicit"/> tells which rule matched.
    /// </summary>
    public static (string Base, bool Explicit)? ToneBase(string name, Func<string, bool> setContains)
    {
        var stripped = ExplicitTone().Replace(name, "").Trim('-');
        if (stripped.Length > 0 && stripped != name) return (stripped, true);

        var parts = name.Split('-');
        int keep = parts.Length;
        while (keep > 1 && FluentToneWords.Contains(parts[keep - 1])) keep--;
        if (keep == parts.Length) return null;
        var bare = string.Join('-', parts, 0, keep);
        return setContains(bare) ? (bare, false) : null;
    }
}
