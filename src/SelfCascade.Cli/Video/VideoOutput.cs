using System.Globalization;
using SelfCascade.Imaging;
using SelfCascade.Video.Output;

namespace SelfCascade.Cli.Video;

/// <summary>
/// Where `generate-video` writes: the container chosen by --out's extension (.mp4 through ffmpeg, .webp or .gif
/// natively), and with --save-frames the PNG frames too. An .mp4 asked for without ffmpeg on PATH becomes the
/// lossless .webp beside it, with a note (so the command works offline on a fresh machine). Every file is written
/// atomically; frames are written first, then the video, so a failing video keeps the complete frames and the error
/// names them (<see cref="OutputsKeptException"/>).
/// </summary>
public static class VideoOutput
{
    public static readonly string[] Extensions = [".mp4", ".webp", ".gif"];

    /// <summary>Checks --out before any work: one of <see cref="Extensions"/>.</summary>
    public static void CheckPath(string outPath)
    {
        var ext = Path.GetExtension(outPath).ToLowerInvariant();
        if (!Extensions.Contains(ext)) throw new ArgumentException($"--out '{outPath}' must end in {string.Join(", ", Extensions)}");
    }

    /// <summary>The file that will actually be written for <paramref name="outPath"/> and, when it differs, why.</summary>
    public static (string Path, string? Note) Resolve(string outPath, string? ffmpeg)
    {
        CheckPath(outPath);
        if (Path.GetExtension(outPath).Equals(".mp4", StringComparison.OrdinalIgnoreCase) && ffmpeg is null)
        {
            var webp = Path.ChangeExtension(outPath, ".webp");
            return (webp, $"ffmpeg is not on PATH: writing {webp} (lossless animated WebP) instead of {outPath}; install ffmpeg for MP4 (Debian/Ubuntu: apt-get install ffmpeg)");
        }
        return (outPath, null);
    }

    /// <summary>Frame file names: DIR/frame_000.png, ... (video v of several: frame_v1_000.png).</summary>
    public static List<string> FrameNames(string dir, int frames, int video = -1) =>
        Enumerable.Range(0, frames).Select(i => System.IO.Path.Combine(dir, video < 0 ? $"frame_{i:D3}.png" : $"frame_v{video}_{i:D3}.png")).ToList();

    /// <summary>Writes the frames (when <paramref name="framesDir"/> is set) and then the video; returns the video's path.</summary>
    public static string Write(string outPath, IReadOnlyList<RgbImage> frames, double fps, IReadOnlyDictionary<string, string> meta,
        string? framesDir, string? ffmpeg, CancellationToken cancellation = default, int videoIndex = -1)
    {
        var (path, _) = Resolve(outPath, ffmpeg);
        var kept = new List<string>();
        if (framesDir != null)
        {
            var names = FrameNames(framesDir, frames.Count, videoIndex);
            try
            {
                for (int i = 0; i < frames.Count; i++)
                {
                    cancellation.ThrowIfCancellationRequested();
                    var m = new Dictionary<string, string>(meta) { ["frame_index"] = i.ToString(CultureInfo.InvariantCulture) };
                    frames[i].SavePng(names[i], m);
                    kept.Add(names[i]);
                }
            }
            catch (Exception e) when (kept.Count > 0) { throw new OutputsKeptException(e, kept); }
        }
        try
        {
            cancellation.ThrowIfCancellationRequested();
            switch (System.IO.Path.GetExtension(path).ToLowerInvariant())
            {
                case ".mp4": FfmpegMp4Writer.Write(ffmpeg!, path, frames, fps, meta, cancellation); break;
                case ".gif": AnimatedGif.Save(path, frames, fps, meta); break;
                default: AnimatedWebP.Save(path, frames, fps, meta); break;
            }
        }
        catch (Exception e) when (kept.Count > 0) { throw new OutputsKeptException(e, kept); }
        return path;
    }
}
