namespace SelfCascade.IO;

/// <summary>
/// Writes a file so that its name only ever holds a complete file: the bytes go to <c>PATH.tmp-PID</c>, are flushed
/// to the disk, and the temporary file is renamed over <c>PATH</c>. On any failure (full disk, I/O error, an
/// exception from the writer) the temporary file is deleted and <c>PATH</c> is left as it was (absent, or the old
/// complete file). Images (<see cref="Imaging.RgbImage.SavePng"/>) and safetensors files go through here.
/// </summary>
public static class AtomicFile
{
    /// <summary>The temporary name next to <paramref name="fullPath"/> (one per process).</summary>
    public static string TemporaryPath(string fullPath) => fullPath + ".tmp-" + Environment.ProcessId;

    /// <summary>
    /// Test seam: wraps the stream each file is written through (e.g. one that fails like a full disk after N bytes);
    /// gets the final path and the temporary file's stream, which the wrapper must not dispose. Null in normal use.
    /// </summary>
    internal static Func<string, Stream, Stream>? WrapStreamForTests { get; set; }

    /// <summary>Creates the folder if needed and writes <paramref name="path"/> atomically through <paramref name="write"/>.</summary>
    public static void Write(string path, Action<Stream> write, int bufferSize = 1 << 16)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        var tmp = TemporaryPath(full);
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize))
            {
                if (WrapStreamForTests is { } wrap)
                {
                    // The wrapper never owns the file stream: it is flushed, not disposed.
                    var wrapped = wrap(full, fs);
                    write(wrapped);
                    wrapped.Flush();
                }
                else write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, s => s.Write(bytes));
}
