using System.Text.Json;
using SelfCascade.Imaging;

namespace SelfCascade.Data.Motion;

/// <summary>
/// Synthetic motion clips from a folder of emoji renders (the dataset's <c>render/{size}/{split}</c>: PNG files with
/// the caption in a .txt beside each). Clip i is a pure function of (seed, i): which design, which motion and its
/// magnitudes, so training and benchmarks can draw clips on the fly without storing them.
/// </summary>
public sealed class MotionClipDataset
{
    private readonly List<(string Png, string Caption)> _designs;
    public int Seed { get; }
    public int Frames { get; }
    public int Size { get; }
    public int DesignCount => _designs.Count;

    public MotionClipDataset(string renderDir, int seed = 0, int frames = MotionClipSynthesizer.DefaultFrames, int size = MotionClipSynthesizer.DefaultSize)
    {
        if (!Directory.Exists(renderDir)) throw new DirectoryNotFoundException($"{renderDir}: render folder not found");
        if (frames < 1) throw new ArgumentOutOfRangeException(nameof(frames), "clips need at least one frame");
        if (size < 8) throw new ArgumentOutOfRangeException(nameof(size), "clips are at least 8 px");
        _designs = Directory.GetFiles(renderDir, "*.png").Order(StringComparer.Ordinal)
            .Select(p => (p, File.Exists(Path.ChangeExtension(p, ".txt")) ? File.ReadAllText(Path.ChangeExtension(p, ".txt")).Trim() : Path.GetFileNameWithoutExtension(p)))
            .ToList();
        if (_designs.Count == 0) throw new InvalidDataException($"{renderDir}: no .png renders");
        Seed = seed; Frames = frames; Size = size;
    }

    /// <summary>Design, motion and magnitudes of clip <paramref name="index"/> (deterministic per seed and index).</summary>
    public (int Design, MotionKind Kind, int ClipSeed) Choose(long index)
    {
        // A fixed integer mix (not HashCode.Combine, which is randomised per process).
        ulong h = (ulong)Seed * 0x9E3779B97F4A7C15UL ^ (ulong)index * 0xBF58476D1CE4E5B9UL;
        h ^= h >> 31; h *= 0x94D049BB133111EBUL; h ^= h >> 29;
        var rng = new Random((int)(h & 0x7FFFFFFF));
        int design = rng.Next(_designs.Count);
        var kind = MotionKinds.All[rng.Next(MotionKinds.All.Count)];
        return (design, kind, rng.Next());
    }

    public MotionClip Clip(long index)
    {
        var (design, kind, clipSeed) = Choose(index);
        var (png, caption) = _designs[design];
        return MotionClipSynthesizer.Make(RgbImage.Load(png), caption, kind, clipSeed, Frames, Size);
    }

    /// <summary>
    /// Writes clips 0..count-1 as a folder of frame folders: <c>clip_00000/frame_00.png ...</c>, <c>caption.txt</c> and
    /// <c>motion.json</c> (kind, parameters, every frame's affine map and colour matrix; <see cref="MotionTrack"/>).
    /// </summary>
    public void WriteClips(string outDir, int count, IProgress<int>? progress = null, CancellationToken cancellation = default)
    {
        for (int i = 0; i < count; i++)
        {
            cancellation.ThrowIfCancellationRequested();
            var clip = Clip(i);
            var dir = Path.Combine(outDir, $"clip_{i:D5}");
            Directory.CreateDirectory(dir);
            for (int t = 0; t < clip.Frames.Count; t++) clip.Frames[t].SavePng(Path.Combine(dir, $"frame_{t:D2}.png"));
            IO.AtomicFile.WriteAllBytes(Path.Combine(dir, "caption.txt"), System.Text.Encoding.UTF8.GetBytes(clip.Caption));
            IO.AtomicFile.WriteAllBytes(Path.Combine(dir, "motion.json"), JsonSerializer.SerializeToUtf8Bytes(ToJson(clip, _designs[Choose(i).Design].Png), Json));
            progress?.Report(i + 1);
        }
    }

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static object ToJson(MotionClip clip, string designPath) => new
    {
        caption = clip.Caption,
        design = Path.GetFileName(designPath),
        design_caption = clip.DesignCaption,
        motion = MotionKinds.Name(clip.Motion.Kind),
        parameters = clip.Motion.Parameters,
        coordinates = "affine [a,b,tx,c,d,ty] maps a point of the still design (pixel coordinates of the unmoved frame, pixel centres at +0.5) to this frame; colour is a row-major 3x3 on RGB in [0,1]",
        frames = clip.Motion.Frames.Select(f => new { affine = f.Affine, colour = f.Colour }),
    };

    /// <summary>Reads a clip's motion.json back (for metrics on written clips).</summary>
    public static MotionTrack ReadTrack(string motionJson)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(motionJson));
        var root = doc.RootElement;
        var kind = MotionKinds.Parse(root.GetProperty("motion").GetString()!);
        var parameters = root.GetProperty("parameters").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble());
        var frames = root.GetProperty("frames").EnumerateArray().Select(f => new MotionFrame(
            f.GetProperty("affine").EnumerateArray().Select(v => v.GetDouble()).ToArray(),
            f.GetProperty("colour").EnumerateArray().Select(v => v.GetDouble()).ToArray())).ToList();
        if (frames.Any(f => f.Affine.Length != 6 || f.Colour.Length != 9)) throw new InvalidDataException($"{motionJson}: malformed frame transforms");
        return new MotionTrack(kind, parameters, frames);
    }
}
