using System.Globalization;
using SelfCascade.Imaging;

namespace SelfCascade.Cli;

/// <summary>
/// How the image commands write their results. Each file is written atomically (<see cref="IO.AtomicFile"/>), so
/// no partial or temporary file is ever left. Files are written one after another once the whole run has produced
/// its images; Ctrl+C is checked before each file. When a file fails (unwritable target, full disk) or Ctrl+C
/// arrives between files, the files already complete are kept, not deleted (nothing finished is lost), and the
/// error names them; the file in progress and the later ones are not written.
/// </summary>
public static class ImageOutput
{
    public static void WriteAll(IReadOnlyList<RgbImage> images, IReadOnlyList<string> files, IReadOnlyDictionary<string, string> meta,
        CancellationToken cancellation = default)
    {
        if (images.Count != files.Count) throw new ArgumentException($"{images.Count} images for {files.Count} file names");
        var written = new List<string>();
        try
        {
            for (int i = 0; i < images.Count; i++)
            {
                cancellation.ThrowIfCancellationRequested();
                var m = new Dictionary<string, string>(meta);
                if (images.Count > 1) m["image_index"] = i.ToString(CultureInfo.InvariantCulture);
                images[i].SavePng(files[i], m);
                written.Add(files[i]);
            }
        }
        catch (Exception e) when (written.Count > 0)
        {
            throw new OutputsKeptException(e, written);
        }
    }
}

/// <summary>A failure or cancel after some output files were complete; they are kept and <see cref="Kept"/> names them.</summary>
public sealed class OutputsKeptException(Exception inner, IReadOnlyList<string> kept)
    : Exception(inner.Message, inner)
{
    public IReadOnlyList<string> Kept { get; } = kept;
    public string KeptNote => $"{Kept.Count} complete file{(Kept.Count == 1 ? "" : "s")} kept: {string.Join(", ", Kept)}";
}
