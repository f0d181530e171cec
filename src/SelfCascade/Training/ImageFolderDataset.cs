using SelfCascade.Imaging;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Training;

/// <summary>How a training crop is taken from a larger image.</summary>
public enum CropMode
{
    /// <summary>A crop at a seeded random position (a pure function of (seed, sample index)).</summary>
    Random,
    /// <summary>The centred crop.</summary>
    Center,
}

/// <summary>One training example: the image (3, S, S) in [-1, 1], fp32 on the CPU, and its caption.</summary>
public sealed record TrainingExample(Tensor Image, string Caption, string Path);

/// <summary>A file the dataset did not take, and why.</summary>
public sealed record SkippedFile(string Path, string Reason);

/// <summary>
/// A folder (searched recursively) of images (png, jpg, jpeg, webp, bmp) with optional same-name <c>.txt</c>
/// captions (no caption file: the empty caption). Every image at least <see cref="Size"/> on both sides is used,
/// cropped to <see cref="Size"/>×<see cref="Size"/>; unreadable and too-small files are skipped and counted, never
/// fatal. A folder with no usable image is an error that says what was found. Files are decoded once while
/// scanning (that is what proves them readable) and kept in memory when they fit <c>cacheBytes</c>.
/// </summary>
public sealed class ImageFolderDataset
{
    public static readonly string[] Extensions = [".png", ".jpg", ".jpeg", ".webp", ".bmp"];

    /// <summary>A clip folder's caption for frames without their own .txt (with video clips on).</summary>
    public const string ClipCaptionFile = "caption.txt";

    private static readonly Scalar Half255 = 127.5.ToScalar();
    private static readonly Scalar One = 1.0.ToScalar();
    private readonly List<Item> _items = [];
    private readonly List<SkippedFile> _skipped = [];
    private readonly List<string> _excluded = [];

    private sealed class Item(string path, string caption, int width, int height, int frame = -1,
        Func<string, IReadOnlyList<RgbImage>>? clipReader = null)
    {
        public string Path { get; } = path;
        /// <summary>Reads the whole clip again when a frame is not cached.</summary>
        public Func<string, IReadOnlyList<RgbImage>>? ClipReader { get; } = clipReader;
        /// <summary>The frame of an animated file (-1: a still image).</summary>
        public int Frame { get; } = frame;
        public string Caption { get; } = caption;
        public int Width { get; } = width;
        public int Height { get; } = height;
        public RgbImage? Cached { get; set; }
    }

    public string Root { get; }
    public int Size { get; }
    public CropMode Crop { get; }
    public int Count => _items.Count;
    public IReadOnlyList<SkippedFile> Skipped => _skipped;
    /// <summary>Files left out because their caption was in the exclusion set (image or clip files, not frames).</summary>
    public IReadOnlyList<string> Excluded => _excluded;
    public int SkippedUnreadable => _skipped.Count(s => s.Reason.StartsWith("unreadable", StringComparison.Ordinal));
    public int SkippedTooSmall => _skipped.Count(s => s.Reason.StartsWith("too small", StringComparison.Ordinal));

    /// <summary>Whether video clips are read (<see cref="ImageFolderDataset(string, int, CropMode, long, bool)"/>).</summary>
    public bool VideoClips { get; }

    /// <param name="videoClips">
    /// Also take video clips, every frame as a training image: animated GIF/WebP files contribute all their frames
    /// (<see cref="Video.Input.AnimatedImageReader"/>), and an image without its own .txt takes its folder's
    /// <c>caption.txt</c> (a folder of frame PNGs, as <c>motion-data</c> writes clips). Off: images only, as before.
    /// </param>
    /// <param name="clipReaders">With <paramref name="videoClips"/>: readers for further video types (e.g. MP4 through ffmpeg).</param>
    /// <param name="excludeCaptions">Files whose caption (as read, trimmed) is in this set are left out before decoding and
    /// counted in <see cref="Excluded"/> (e.g. the designs a benchmark evaluates on); null = none.</param>
    public ImageFolderDataset(string root, int size, CropMode crop = CropMode.Random, long cacheBytes = 1L << 30, bool videoClips = false,
        IReadOnlyList<Video.Input.VideoClipReader>? clipReaders = null, IReadOnlySet<string>? excludeCaptions = null)
    {
        // Which reader takes a file as a clip (every frame); null = read as a still image.
        Func<string, IReadOnlyList<RgbImage>>? ClipReaderFor(string file)
        {
            if (!videoClips) return null;
            var ext = System.IO.Path.GetExtension(file).ToLowerInvariant();
            if (Video.Input.AnimatedImageReader.Extensions.Contains(ext)) return f => Video.Input.AnimatedImageReader.ReadFrames(f);
            return clipReaders?.FirstOrDefault(r => r.Extensions.Contains(ext))?.ReadFrames;
        }
        VideoClips = videoClips;
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size), $"training size {size} must be positive");
        if (string.IsNullOrWhiteSpace(root)) throw new ArgumentException("no data folder given");
        Root = System.IO.Path.GetFullPath(root);
        if (!Directory.Exists(Root)) throw new DirectoryNotFoundException($"{Root}: data folder not found");
        Size = size;
        Crop = crop;
        var files = Directory.EnumerateFiles(Root, "*", SearchOption.AllDirectories)
            .Where(f => Extensions.Contains(System.IO.Path.GetExtension(f).ToLowerInvariant()) || ClipReaderFor(f) is not null)
            .OrderBy(f => System.IO.Path.GetRelativePath(Root, f), StringComparer.Ordinal)
            .ToList();
        long cached = 0;
        foreach (var f in files)
        {
            if (excludeCaptions is not null && excludeCaptions.Contains(ReadCaption(f, videoClips)))
            {
                _excluded.Add(f);
                continue;
            }
            if (ClipReaderFor(f) is { } readClip)
            {
                IReadOnlyList<RgbImage> frames;
                try
                {
                    frames = readClip(f);
                    if (frames.Count == 0) throw new InvalidDataException($"{f}: no frames");
                }
                catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or UnauthorizedAccessException)
                {
                    _skipped.Add(new SkippedFile(f, "unreadable: " + e.Message));
                    continue;
                }
                if (frames[0].Width < size || frames[0].Height < size)
                {
                    _skipped.Add(new SkippedFile(f, $"too small: {frames[0].Width}x{frames[0].Height} < {size}x{size}"));
                    continue;
                }
                var clipCaption = ReadCaption(f, videoClips);
                for (int k = 0; k < frames.Count; k++)
                {
                    // Frames of a clip that does not fit the cache are decoded again (the whole clip) when drawn.
                    var frameItem = new Item(f, clipCaption, frames[k].Width, frames[k].Height, k, readClip);
                    long frameBytes = frames[k].Pixels.Length;
                    if (cached + frameBytes <= cacheBytes) { frameItem.Cached = frames[k]; cached += frameBytes; }
                    _items.Add(frameItem);
                }
                continue;
            }
            RgbImage image;
            try { image = RgbImage.Load(f); }
            catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or UnauthorizedAccessException)
            {
                _skipped.Add(new SkippedFile(f, "unreadable: " + e.Message));
                continue;
            }
            if (image.Width < size || image.Height < size)
            {
                _skipped.Add(new SkippedFile(f, $"too small: {image.Width}x{image.Height} < {size}x{size}"));
                continue;
            }
            var item = new Item(f, ReadCaption(f, videoClips), image.Width, image.Height);
            long bytes = image.Pixels.Length;
            if (cached + bytes <= cacheBytes) { item.Cached = image; cached += bytes; }
            _items.Add(item);
        }
        if (_items.Count == 0)
        {
            var detail = files.Count == 0
                ? $"no image files ({string.Join(", ", Extensions)}) found"
                : $"{files.Count} image file(s) found, none usable ({SkippedUnreadable} unreadable, {SkippedTooSmall} smaller than {size}x{size}, {_excluded.Count} excluded by caption)";
            throw new InvalidDataException($"{Root}: the data folder has no training images: {detail}");
        }
    }

    public string CaptionAt(int index) => _items[index].Caption;
    public string PathAt(int index) => _items[index].Path;

    /// <summary>
    /// Item <paramref name="index"/> cropped to Size×Size: centred, or at a position drawn from
    /// (<paramref name="seed"/>, <paramref name="sampleIndex"/>) so that a resumed run draws the same crop.
    /// </summary>
    public TrainingExample Get(int index, long seed, long sampleIndex)
    {
        var item = _items[index];
        var image = item.Cached ?? (item.ClipReader is { } read ? read(item.Path)[item.Frame] : RgbImage.Load(item.Path));
        int x, y;
        if (Crop == CropMode.Center)
        {
            x = (image.Width - Size) / 2;
            y = (image.Height - Size) / 2;
        }
        else
        {
            x = SeedStreams.Below(image.Width - Size + 1, seed, SeedStreams.Crop, 2 * sampleIndex);
            y = SeedStreams.Below(image.Height - Size + 1, seed, SeedStreams.Crop, 2 * sampleIndex + 1);
        }
        return new TrainingExample(CropToTensor(image, x, y, Size), item.Caption, item.Path);
    }

    /// <summary>A (3, size, size) fp32 tensor in [-1, 1] of the crop at (x, y), as <see cref="RgbImage.ToTensor"/>.</summary>
    public static Tensor CropToTensor(RgbImage image, int x, int y, int size)
    {
        var bytes = new byte[size * size * 3];
        for (int row = 0; row < size; row++)
            Buffer.BlockCopy(image.Pixels, ((y + row) * image.Width + x) * 3, bytes, row * size * 3, size * 3);
        using var scope = NewDisposeScope();
        var raw = tensor(bytes, [size, size, 3]);
        var t = raw.permute(2, 0, 1).to(ScalarType.Float32).div(Half255).sub(One);
        return t.contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>The file's own .txt; else, for video clips, its folder's <c>caption.txt</c> (a fixed name); else "".</summary>
    private static string ReadCaption(string imagePath, bool videoClips = false)
    {
        var txt = System.IO.Path.ChangeExtension(imagePath, ".txt");
        if (!File.Exists(txt) && videoClips) txt = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(imagePath)!, ClipCaptionFile);
        if (!File.Exists(txt)) return "";
        try { return File.ReadAllText(txt).Trim(); }
        catch (IOException) { return ""; }
    }

    /// <summary>A caption list file: one caption per line, trimmed as captions are read; blank lines ignored.</summary>
    public static HashSet<string> ReadCaptionList(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: caption list not found", path);
        return File.ReadLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>A short human summary: "N images (k skipped: a unreadable, b too small)".</summary>
    public string Summary()
    {
        int clipFrames = _items.Count(i => i.Frame >= 0);
        var what = clipFrames == 0 ? $"{Count} images" : $"{Count} images ({clipFrames} of them frames from {_items.Where(i => i.Frame >= 0).Select(i => i.Path).Distinct().Count()} video file(s))";
        return _skipped.Count == 0 ? what : $"{what} ({_skipped.Count} skipped: {SkippedUnreadable} unreadable, {SkippedTooSmall} too small)";
    }
}
