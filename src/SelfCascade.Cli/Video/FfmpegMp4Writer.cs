using System.Diagnostics;
using System.Globalization;
using System.Text;
using SelfCascade.Imaging;
using SelfCascade.Video.Output;

namespace SelfCascade.Cli.Video;

/// <summary>
/// MP4 (H.264, yuv420p) through an external <c>ffmpeg</c>: raw RGB frames are piped to its stdin (a plain process,
/// no wrapper package: one argument list and one pipe are all this needs). ffmpeg writes a temporary file beside the
/// target, which is renamed into place only after ffmpeg exited 0; on any failure (ffmpeg exits non-zero or stops
/// reading mid-stream, Ctrl+C) the temporary file is deleted and one <see cref="VideoEncodingException"/> names
/// ffmpeg's own last error lines. The parameters go into the MP4's metadata tags (<c>use_metadata_tags</c>), the
/// A1111-style <c>parameters</c> line also into the standard <c>comment</c> tag.
/// </summary>
public static class FfmpegMp4Writer
{
    /// <summary>x264 quality: 15 is visually lossless for these clips (the default 23 smears small emoji).</summary>
    public const int Crf = 15;

    /// <summary>The first <c>ffmpeg</c> executable on PATH, or null.</summary>
    public static string? Find(string name = "ffmpeg")
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate) && (OperatingSystem.IsWindows() || (File.GetUnixFileMode(candidate) & UnixFileMode.UserExecute) != 0))
                return candidate;
        }
        return null;
    }

    public static void Write(string ffmpeg, string path, IReadOnlyList<RgbImage> frames, double fps,
        IReadOnlyDictionary<string, string>? metadata = null, CancellationToken cancellation = default)
    {
        var (w, h) = VideoEncoding.Validate(frames, fps);
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        var tmp = IO.AtomicFile.TemporaryPath(full) + ".mp4";
        var psi = new ProcessStartInfo(ffmpeg)
        {
            RedirectStandardInput = true, RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false,
        };
        foreach (var a in Arguments(w, h, fps, metadata, tmp)) psi.ArgumentList.Add(a);
        var stderr = new BoundedLog(64);
        try
        {
            using var process = new Process { StartInfo = psi };
            process.ErrorDataReceived += (_, e) => { if (e.Data != null) stderr.Add(e.Data); };
            process.OutputDataReceived += (_, _) => { };
            try { process.Start(); }
            catch (System.ComponentModel.Win32Exception e) { throw new VideoEncodingException($"ffmpeg could not be started ({ffmpeg}): {e.Message}"); }
            process.BeginErrorReadLine();
            process.BeginOutputReadLine();
            bool pipeBroke = false;
            using (cancellation.Register(() => { try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { } }))
            {
                try
                {
                    var stdin = process.StandardInput.BaseStream;
                    foreach (var frame in frames)
                    {
                        cancellation.ThrowIfCancellationRequested();
                        stdin.Write(frame.Pixels);
                    }
                    stdin.Flush();
                    stdin.Close();
                }
                catch (IOException) { pipeBroke = true; } // ffmpeg stopped reading; its exit code and stderr say why
                process.WaitForExit();
            }
            cancellation.ThrowIfCancellationRequested();
            if (process.ExitCode != 0 || pipeBroke)
            {
                var why = stderr.Tail(3);
                throw new VideoEncodingException(
                    $"ffmpeg failed writing {path} (exit code {process.ExitCode}{(pipeBroke ? ", stopped reading frames" : "")})" +
                    (why.Length > 0 ? ": " + why : ""));
            }
            if (!File.Exists(tmp) || new FileInfo(tmp).Length == 0)
                throw new VideoEncodingException($"ffmpeg exited 0 but wrote no video for {path}");
            using (var fs = new FileStream(tmp, FileMode.Open, FileAccess.ReadWrite)) fs.Flush(flushToDisk: true);
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>
    /// ffmpeg's arguments: raw rgb24 in at the given rate; odd sizes padded to even (yuv420p needs it), x264 at
    /// <see cref="Crf"/>, faststart, every parameter as a metadata tag.
    /// </summary>
    public static List<string> Arguments(int width, int height, double fps, IReadOnlyDictionary<string, string>? metadata, string output)
    {
        var inv = CultureInfo.InvariantCulture;
        var args = new List<string>
        {
            "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", $"{width}x{height}", "-framerate", fps.ToString("R", inv), "-i", "pipe:0",
            "-an", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
            "-c:v", "libx264", "-preset", "medium", "-crf", Crf.ToString(inv), "-pix_fmt", "yuv420p",
            "-movflags", "+faststart+use_metadata_tags",
        };
        if (metadata != null)
        {
            foreach (var (key, value) in metadata)
            {
                if (key.Length == 0 || key.Any(c => !(char.IsAsciiLetterOrDigit(c) || c == '_')))
                    throw new ArgumentException($"metadata key '{key}' must be letters, digits and '_'");
                args.Add("-metadata"); args.Add($"{key}={value}");
            }
            if (metadata.TryGetValue("parameters", out var parameters)) { args.Add("-metadata"); args.Add($"comment={parameters}"); }
        }
        args.AddRange(["-f", "mp4", output]);
        return args;
    }

    /// <summary>The last lines a child process wrote (thread-safe; bounded so a chatty child cannot exhaust memory).</summary>
    private sealed class BoundedLog(int maxLines)
    {
        private readonly Queue<string> _lines = new();
        public void Add(string line)
        {
            lock (_lines)
            {
                _lines.Enqueue(line.Length > 500 ? line[..500] : line);
                while (_lines.Count > maxLines) _lines.Dequeue();
            }
        }
        public string Tail(int n)
        {
            lock (_lines)
            {
                var sb = new StringBuilder();
                foreach (var l in _lines.Where(l => !string.IsNullOrWhiteSpace(l)).TakeLast(n)) sb.Append(sb.Length > 0 ? " | " : "").Append(l.Trim());
                return sb.ToString();
            }
        }
    }
}

/// <summary>A video could not be encoded; the message is the one line the CLI prints.</summary>
public sealed class VideoEncodingException(string message) : IOException(message);
