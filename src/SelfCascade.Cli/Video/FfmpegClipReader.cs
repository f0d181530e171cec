using System.Diagnostics;
using System.Globalization;
using SelfCascade.Imaging;
using SelfCascade.Video.Input;

namespace SelfCascade.Cli.Video;

/// <summary>
/// MP4 (and other ffmpeg-readable) clips as training frames for train-upsamplers: ffprobe reads the first video
/// stream's size, ffmpeg decodes it to raw rgb24 frames on stdout. Bounded like the animated-image reader (frame size,
/// total pixels, frame count); without ffmpeg/ffprobe on PATH every such file is skipped with that reason.
/// </summary>
public static class FfmpegClipReader
{
    public static readonly string[] Extensions = [".mp4", ".mov", ".mkv", ".webm"];

    public static VideoClipReader Create() => new(Extensions, ReadFrames);

    public static IReadOnlyList<RgbImage> ReadFrames(string path)
    {
        var ffmpeg = FfmpegMp4Writer.Find() ?? throw new InvalidDataException($"{path}: ffmpeg is not on PATH (needed to read video files)");
        var ffprobe = FfmpegMp4Writer.Find("ffprobe") ?? throw new InvalidDataException($"{path}: ffprobe is not on PATH (needed to read video files)");
        var probe = Run(ffprobe, ["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height", "-of", "csv=p=0:s=x", path], 4096);
        var parts = System.Text.Encoding.ASCII.GetString(probe).Trim().Split('x');
        if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int w)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int h) || w < 1 || h < 1)
            throw new InvalidDataException($"{path}: no video stream");
        if ((long)w * h > AnimatedImageReader.MaxPixelsPerFrame)
            throw new InvalidDataException($"{path}: {w}x{h} frames are over {AnimatedImageReader.MaxPixelsPerFrame} pixels");
        long frameBytes = (long)w * h * 3;
        int maxFrames = (int)Math.Min(1024, AnimatedImageReader.MaxTotalPixels / ((long)w * h));
        // One frame more than allowed is read so that a longer clip is an error, not silently cut.
        var raw = Run(ffmpeg, ["-v", "error", "-nostdin", "-i", path, "-map", "0:v:0", "-frames:v", (maxFrames + 1).ToString(CultureInfo.InvariantCulture),
            "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"], frameBytes * (maxFrames + 1));
        long count = raw.Length / frameBytes;
        if (count == 0 || raw.Length % frameBytes != 0) throw new InvalidDataException($"{path}: ffmpeg returned {raw.Length} bytes, not whole {w}x{h} frames");
        if (count > maxFrames) throw new InvalidDataException($"{path}: more than the {maxFrames} frames allowed at {w}x{h}");
        var frames = new RgbImage[count];
        for (int i = 0; i < count; i++)
            frames[i] = new RgbImage(w, h, raw.AsSpan((int)(i * frameBytes), (int)frameBytes).ToArray());
        return frames;
    }

    /// <summary>Runs a tool and returns its stdout (at most <paramref name="maxBytes"/>); a non-zero exit is an <see cref="InvalidDataException"/>.</summary>
    private static byte[] Run(string exe, IEnumerable<string> args, long maxBytes)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = false, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var process = new Process { StartInfo = psi };
        var stderr = new System.Text.StringBuilder();
        process.ErrorDataReceived += (_, e) => { if (e.Data != null && stderr.Length < 2000) stderr.AppendLine(e.Data); };
        try { process.Start(); }
        catch (System.ComponentModel.Win32Exception e) { throw new InvalidDataException($"{exe} could not be started: {e.Message}"); }
        process.BeginErrorReadLine();
        using var output = new MemoryStream();
        var buffer = new byte[1 << 16];
        var stdout = process.StandardOutput.BaseStream;
        int n;
        while ((n = stdout.Read(buffer, 0, buffer.Length)) > 0)
        {
            if (output.Length + n > maxBytes)
            {
                try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                process.WaitForExit();
                throw new InvalidDataException($"{Path.GetFileName(exe)} wrote more than the {maxBytes} bytes allowed");
            }
            output.Write(buffer, 0, n);
        }
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidDataException($"{Path.GetFileName(exe)} failed (exit code {process.ExitCode}): {stderr.ToString().Trim().Split('\n').LastOrDefault()}");
        return output.ToArray();
    }
}
