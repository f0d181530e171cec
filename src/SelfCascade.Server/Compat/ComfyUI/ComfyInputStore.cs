using SelfCascade.Imaging;

namespace SelfCascade.Server.Compat.ComfyUI;

/// <summary>
/// ComfyUI's "input" folder (DATA/comfyui-input): images from /upload/image, re-encoded as PNG (nothing a client sent
/// is kept byte for byte), under names made of letters, digits, '-', '_' and '.', so no name can leave the folder.
/// </summary>
public sealed class ComfyInputStore
{
    public string Root { get; }
    private readonly object _lock = new();

    public ComfyInputStore(string dataDir)
    {
        Root = Path.GetFullPath(Path.Combine(dataDir, "comfyui-input"));
        Directory.CreateDirectory(Root);
    }

    /// <summary>The uploaded images' names, sorted (LoadImage's list).</summary>
    public IReadOnlyList<string> List() =>
        Directory.EnumerateFiles(Root, "*.png").Select(Path.GetFileName).Where(n => IsValidName(n)).Order(StringComparer.Ordinal).ToList()!;

    /// <summary>Stores an image under a name derived from the client's; an existing different file gets "name_1.png" unless overwrite.</summary>
    public string Save(RgbImage image, string? clientName, bool overwrite)
    {
        var stem = Sanitize(Path.GetFileNameWithoutExtension(clientName ?? "") ?? "");
        if (stem.Length == 0) stem = "image";
        var png = image.EncodePng();
        lock (_lock)
        {
            for (int i = 0; ; i++)
            {
                var name = i == 0 ? $"{stem}.png" : $"{stem}_{i}.png";
                var path = Path.Combine(Root, name);
                // As ComfyUI: the same bytes under the same name are not stored twice.
                if (!overwrite && File.Exists(path) && !File.ReadAllBytes(path).AsSpan().SequenceEqual(png)) continue;
                SelfCascade.IO.AtomicFile.WriteAllBytes(path, png);
                return name;
            }
        }
    }

    /// <summary>The path of an uploaded image, or null for a name the store would not make or an absent file.</summary>
    public string? Find(string? name)
    {
        if (!IsValidName(name)) return null;
        var path = Path.Combine(Root, name!);
        return File.Exists(path) ? path : null;
    }

    public static bool IsValidName(string? name) =>
        name is { Length: > 4 and <= 120 } && name.EndsWith(".png", StringComparison.Ordinal) && !name.StartsWith('.')
        && name[..^4].All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') && !name.Contains("..");

    private static string Sanitize(string stem)
    {
        var chars = stem.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_').ToArray();
        var s = new string(chars).Trim('_');
        return s.Length > 100 ? s[..100] : s;
    }
}
