using System.Globalization;
using SelfCascade.Imaging;

namespace SelfCascade.Evaluation;

/// <summary>
/// Keeps the benchmark's generated images on disk, <c>{root}/{method}/x{scale}/{index:D3}.png</c>, with the
/// generation's wall time and peak resident memory in the PNG's text chunks. Generation is the expensive part of the
/// benchmark; with a store the metrics (a new feature network, bootstrap settings) can be recomputed without
/// sampling again, and an interrupted run resumes where it stopped.
/// </summary>
public sealed class GeneratedImageStore(string root)
{
    private const string SecondsKey = "selfcascade:seconds", PeakKey = "selfcascade:peak_mib", PromptKey = "selfcascade:prompt";

    public string Root { get; } = root;

    /// <summary>The file of one image; method names are limited to letters, digits and <c>.+-_</c> (no path traversal).</summary>
    public string PathOf(string method, int scale, int index)
    {
        if (method.Length == 0 || method.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '.' or '+' or '-' or '_')) || method.StartsWith('.'))
            throw new ArgumentException($"method name '{method}' is not a safe folder name");
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfLessThan(scale, 1);
        return Path.Combine(Root, method, string.Create(CultureInfo.InvariantCulture, $"x{scale}"), string.Create(CultureInfo.InvariantCulture, $"{index:D3}.png"));
    }

    /// <summary>A stored image with its recorded cost, or null when it is missing or was made for another prompt.</summary>
    public (RgbImage Image, double Seconds, double PeakMiB)? TryLoad(string method, int scale, int index, QualityPrompt prompt)
    {
        var path = PathOf(method, scale, index);
        if (!File.Exists(path)) return null;
        var text = RgbImage.ReadPngText(path);
        if (!text.TryGetValue(PromptKey, out var id) || id != Key(prompt)) return null;
        double Read(string k) => text.TryGetValue(k, out var v) && double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : double.NaN;
        return (RgbImage.Load(path), Read(SecondsKey), Read(PeakKey));
    }

    public void Save(string method, int scale, int index, QualityPrompt prompt, RgbImage image, double seconds, double peakMiB)
    {
        var path = PathOf(method, scale, index);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var tmp = path + ".tmp";
        image.SavePng(tmp, new Dictionary<string, string>
        {
            [PromptKey] = Key(prompt),
            [SecondsKey] = seconds.ToString("R", CultureInfo.InvariantCulture),
            [PeakKey] = peakMiB.ToString("R", CultureInfo.InvariantCulture),
        });
        File.Move(tmp, path, overwrite: true);
    }

    private static string Key(QualityPrompt p) => string.Create(CultureInfo.InvariantCulture, $"{p.Id}|{p.Seed}");
}
