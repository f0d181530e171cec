using System.Text;

namespace SelfCascade.Data;

public enum Split { Train, Validation, Test }

/// <summary>
/// The fixed split rule: FNV-1a (32-bit) of the caption's UTF-8 bytes, mod 100: 0-79 train, 80-89 validation,
/// 90-99 test. Keyed on the caption, so one concept (the same name in every set) lands in one split and the test
/// split's concepts are unseen in training.
/// </summary>
public static class DatasetSplit
{
    public const string Rule = "FNV-1a 32-bit hash of the caption's UTF-8 bytes, mod 100: 0-79 train, 80-89 validation, 90-99 test";

    public static Split Of(string caption)
    {
        uint bucket = Fnv1a(caption) % 100;
        return bucket < 80 ? Split.Train : bucket < 90 ? Split.Validation : Split.Test;
    }

    public static uint Fnv1a(string text)
    {
        uint hash = 2166136261;
        foreach (var b in Encoding.UTF8.GetBytes(text)) { hash ^= b; hash *= 16777619; }
        return hash;
    }

    /// <summary>Folder name of a split: train, validation, test.</summary>
    public static string Name(Split split) => split switch
    {
        Split.Train => "train",
        Split.Validation => "validation",
        _ => "test",
    };
}
