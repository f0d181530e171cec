namespace SelfCascade.Data;

/// <summary>One design to render: a set's icon (or flipped/turned alias) with its caption and split.</summary>
public sealed record EmojiDesign(string Set, string Name, string Caption, Split Split)
{
    /// <summary>File stem: <c>{set}__{name}</c>, characters outside [a-z0-9-_.] replaced by '_'.</summary>
    public string Id => FileSafe(Set) + "__" + FileSafe(Name);

    private static string FileSafe(string s) =>
        new(s.Select(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '_' or '.' ? c : '_').ToArray());
}

/// <summary>Which icons of a set become designs, with the counts of what was left out and why.</summary>
public sealed record SetSelection(string Set, IReadOnlyList<EmojiDesign> Designs, int Icons, int Aliases,
    int ToneVariantsDropped, int PlainAliasesSkipped);

/// <summary>
/// Picks a set's designs, in ordinal name order:
/// <list type="bullet">
/// <item>every icon;</item>
/// <item>aliases only when they flip or turn their parent (a distinct image, e.g. Fluent's
/// <c>backhand-index-pointing-right</c>); a plain alias is another name for the same image and is skipped;</item>
/// <item>skin-tone variants are dropped when the set has the toneless (default yellow) design; where it has none
/// (Noto's mixed-tone <c>kiss-person-person-*</c> pairs) the first variant stands for the design, captioned without
/// the tones;</item>
/// <item>flags and everything else are kept.</item>
/// </list>
/// </summary>
public static class DesignSelector
{
    public static SetSelection Select(IconifySet set)
    {
        var candidates = set.Icons.Keys
            .Concat(set.Aliases.Where(a => a.Value.Transforms).Select(a => a.Key))
            .Order(StringComparer.Ordinal)
            .ToList();
        var designs = new List<EmojiDesign>();
        var orphanBases = new HashSet<string>(StringComparer.Ordinal);
        int toneDropped = 0;
        foreach (var name in candidates)
        {
            var caption = EmojiNames.Caption(name);
            if (EmojiNames.ToneBase(name, set.Contains) is { } tone)
            {
                if (set.Contains(tone.Base) || !orphanBases.Add(tone.Base)) { toneDropped++; continue; }
                caption = EmojiNames.Caption(tone.Base);
            }
            if (caption.Length == 0) continue;
            designs.Add(new EmojiDesign(set.Prefix, name, caption, DatasetSplit.Of(caption)));
        }
        int plainAliases = set.Aliases.Count(a => !a.Value.Transforms);
        return new SetSelection(set.Prefix, designs, set.Icons.Count, set.Aliases.Count, toneDropped, plainAliases);
    }
}
