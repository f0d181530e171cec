using System.Text;
using System.Text.Json;
using SelfCascade.Imaging;

namespace SelfCascade.Video.Output;

/// <summary>
/// Animated GIF (GIF89a), written by hand: one global palette for all frames (exact when the clip has at most 256
/// colours, else median cut, so colours do not flicker between frames), LZW-coded frames, the NETSCAPE2.0 loop
/// extension and the generation parameters as JSON in a comment extension. No dithering: a pixel's error is bounded
/// by its palette cell, which keeps a still region still.
/// </summary>
public static class AnimatedGif
{
    /// <summary>The comment's first line, so a reader can tell the parameters from other comments.</summary>
    public const string CommentHeader = "SelfCascade parameters";

    public static void Write(Stream output, IReadOnlyList<RgbImage> frames, double fps, IReadOnlyDictionary<string, string>? metadata = null, int loopCount = 0)
    {
        var (w, h) = VideoEncoding.Validate(frames, fps);
        if (w > ushort.MaxValue || h > ushort.MaxValue) throw new ArgumentException($"GIF frames are at most 65535 px a side, got {w}x{h}");
        var palette = GifPalette.Build(frames);
        var delays = VideoEncoding.Durations(frames.Count, fps, 100);

        var bw = new BinaryWriter(output, Encoding.ASCII, leaveOpen: true);
        bw.Write("GIF89a"u8);
        bw.Write((ushort)w); bw.Write((ushort)h);
        bw.Write((byte)0xF7);             // global colour table, 8 bits colour resolution, 256 entries
        bw.Write((byte)0); bw.Write((byte)0); // background index, aspect ratio
        var table = new byte[256 * 3];
        for (int i = 0; i < palette.Colours.Count; i++)
        {
            table[i * 3] = (byte)(palette.Colours[i] >> 16); table[i * 3 + 1] = (byte)(palette.Colours[i] >> 8); table[i * 3 + 2] = (byte)palette.Colours[i];
        }
        bw.Write(table);
        // NETSCAPE2.0: loop count (0 = forever).
        bw.Write([0x21, 0xFF, 11]); bw.Write("NETSCAPE2.0"u8); bw.Write([3, 1]); bw.Write((ushort)loopCount); bw.Write((byte)0);
        if (metadata is { Count: > 0 })
        {
            bw.Write([0x21, 0xFE]);
            WriteSubBlocks(bw, Encoding.UTF8.GetBytes(CommentHeader + "\n" + JsonSerializer.Serialize(metadata)));
        }
        var indices = new byte[w * h];
        for (int f = 0; f < frames.Count; f++)
        {
            // Graphic control: disposal 1 (leave in place), no transparency, the frame's delay in 1/100 s.
            bw.Write([0x21, 0xF9, 4, 0x04]); bw.Write((ushort)delays[f]); bw.Write([0, 0]);
            bw.Write((byte)0x2C); bw.Write((ushort)0); bw.Write((ushort)0); bw.Write((ushort)w); bw.Write((ushort)h); bw.Write((byte)0);
            palette.Map(frames[f], indices);
            bw.Write((byte)8);            // LZW minimum code size for a 256-entry table
            WriteSubBlocks(bw, GifLzw.Encode(indices));
        }
        bw.Write((byte)0x3B);
        bw.Flush();
    }

    public static void Save(string path, IReadOnlyList<RgbImage> frames, double fps, IReadOnlyDictionary<string, string>? metadata = null) =>
        IO.AtomicFile.Write(path, s => Write(s, frames, fps, metadata));

    /// <summary>The parameters written by <see cref="Write"/> (empty when the file has none), read from its comment extensions.</summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(byte[] gif)
    {
        foreach (var comment in ReadComments(gif))
        {
            if (!comment.StartsWith(CommentHeader + "\n", StringComparison.Ordinal)) continue;
            return JsonSerializer.Deserialize<Dictionary<string, string>>(comment[(CommentHeader.Length + 1)..]) ?? [];
        }
        return new Dictionary<string, string>();
    }

    /// <summary>Every comment extension's text (UTF-8), walking the block structure (bounded by the input's size).</summary>
    public static IReadOnlyList<string> ReadComments(byte[] gif)
    {
        var result = new List<string>();
        if (gif.Length < 13 || !gif.AsSpan(0, 3).SequenceEqual("GIF"u8)) throw new InvalidDataException("not a GIF stream");
        int pos = 13;
        if ((gif[10] & 0x80) != 0) pos += 3 << ((gif[10] & 7) + 1);
        while (pos < gif.Length)
        {
            byte b = gif[pos++];
            if (b == 0x3B) break;
            if (b == 0x21)
            {
                if (pos >= gif.Length) break;
                byte label = gif[pos++];
                var data = ReadSubBlocks(gif, ref pos);
                if (label == 0xFE) result.Add(Encoding.UTF8.GetString(data));
            }
            else if (b == 0x2C)
            {
                if (pos + 9 > gif.Length) break;
                byte flags = gif[pos + 8];
                pos += 9;
                if ((flags & 0x80) != 0) pos += 3 << ((flags & 7) + 1);
                pos++; // LZW minimum code size
                ReadSubBlocks(gif, ref pos);
            }
            else throw new InvalidDataException($"unexpected GIF block 0x{b:X2} at byte {pos - 1}");
        }
        return result;
    }

    private static void WriteSubBlocks(BinaryWriter bw, byte[] data)
    {
        for (int i = 0; i < data.Length; i += 255)
        {
            int n = Math.Min(255, data.Length - i);
            bw.Write((byte)n);
            bw.Write(data, i, n);
        }
        bw.Write((byte)0);
    }

    private static byte[] ReadSubBlocks(byte[] gif, ref int pos)
    {
        using var ms = new MemoryStream();
        while (pos < gif.Length)
        {
            int n = gif[pos++];
            if (n == 0) break;
            if (pos + n > gif.Length) throw new InvalidDataException("GIF sub-block runs past the end of the file");
            ms.Write(gif, pos, n);
            pos += n;
        }
        return ms.ToArray();
    }
}

/// <summary>GIF's variable-length LZW (codes 9-12 bits, LSB first, clear code when the 4096-entry table is full).</summary>
internal static class GifLzw
{
    private const int Clear = 256, End = 257, MaxCodes = 4096;

    public static byte[] Encode(ReadOnlySpan<byte> indices)
    {
        var output = new List<byte>(indices.Length / 2 + 16);
        int bitBuffer = 0, bitCount = 0;
        int next = End + 1;
        // (prefix code << 8 | byte) -> code; int keys stay below 4096 * 256.
        var table = new Dictionary<int, int>(MaxCodes);

        void Emit(int code)
        {
            // The decoder lags one entry behind the encoder: it widens codes once its table reaches 2^size.
            int size = Math.Clamp(32 - int.LeadingZeroCount(next - 1), 9, 12);
            bitBuffer |= code << bitCount;
            bitCount += size;
            while (bitCount >= 8) { output.Add((byte)bitBuffer); bitBuffer >>= 8; bitCount -= 8; }
        }

        Emit(Clear);
        if (indices.Length == 0) { Emit(End); if (bitCount > 0) output.Add((byte)bitBuffer); return [.. output]; }
        int prefix = indices[0];
        for (int i = 1; i < indices.Length; i++)
        {
            int c = indices[i];
            int key = (prefix << 8) | c;
            if (table.TryGetValue(key, out int code)) { prefix = code; continue; }
            Emit(prefix);
            if (next < MaxCodes) table[key] = next++;
            else
            {
                Emit(Clear);
                table.Clear();
                next = End + 1;
            }
            prefix = c;
        }
        Emit(prefix);
        Emit(End);
        if (bitCount > 0) output.Add((byte)bitBuffer);
        return [.. output];
    }
}

/// <summary>The one palette of an animated GIF: the exact colours when there are at most 256, else a median cut.</summary>
internal sealed class GifPalette
{
    public IReadOnlyList<int> Colours { get; }
    private readonly Dictionary<int, byte> _lookup = new();

    private GifPalette(List<int> colours, bool exact)
    {
        Colours = colours;
        if (exact) for (int i = 0; i < colours.Count; i++) _lookup[colours[i]] = (byte)i;
    }

    public static GifPalette Build(IReadOnlyList<RgbImage> frames)
    {
        var unique = new HashSet<int>();
        foreach (var f in frames)
        {
            var p = f.Pixels;
            for (int i = 0; i < p.Length && unique.Count <= 256; i += 3) unique.Add(p[i] << 16 | p[i + 1] << 8 | p[i + 2]);
            if (unique.Count > 256) break;
        }
        if (unique.Count <= 256)
        {
            var sorted = unique.ToList();
            sorted.Sort();
            return new GifPalette(sorted, exact: true);
        }
        return new GifPalette(MedianCut(frames, 256), exact: false);
    }

    /// <summary>Writes each pixel's palette index (nearest colour in RGB distance; ties to the lower index).</summary>
    public void Map(RgbImage frame, byte[] indices)
    {
        var p = frame.Pixels;
        for (int i = 0, j = 0; i < p.Length; i += 3, j++)
        {
            int rgb = p[i] << 16 | p[i + 1] << 8 | p[i + 2];
            if (!_lookup.TryGetValue(rgb, out var idx))
            {
                idx = Nearest(p[i], p[i + 1], p[i + 2]);
                _lookup[rgb] = idx;
            }
            indices[j] = idx;
        }
    }

    private byte Nearest(int r, int g, int b)
    {
        int best = 0, bestD = int.MaxValue;
        for (int k = 0; k < Colours.Count; k++)
        {
            int c = Colours[k];
            int dr = r - (c >> 16 & 255), dg = g - (c >> 8 & 255), db = b - (c & 255);
            int d = dr * dr + dg * dg + db * db;
            if (d < bestD) { bestD = d; best = k; }
        }
        return (byte)best;
    }

    /// <summary>
    /// Median cut over a 15-bit histogram (5 bits a channel, each bin keeping its exact colour sums): the box with
    /// the widest channel range times its pixel count is split at its weighted median until there are n boxes; each
    /// palette entry is its box's mean colour.
    /// </summary>
    private static List<int> MedianCut(IReadOnlyList<RgbImage> frames, int n)
    {
        var count = new long[32768];
        var sum = new long[32768 * 3];
        foreach (var f in frames)
        {
            var p = f.Pixels;
            for (int i = 0; i < p.Length; i += 3)
            {
                int bin = (p[i] >> 3) << 10 | (p[i + 1] >> 3) << 5 | p[i + 2] >> 3;
                count[bin]++;
                sum[bin * 3] += p[i]; sum[bin * 3 + 1] += p[i + 1]; sum[bin * 3 + 2] += p[i + 2];
            }
        }
        var bins = Enumerable.Range(0, 32768).Where(b => count[b] > 0).ToArray();
        // Each bin's mean colour as a representative point.
        var mean = new int[32768 * 3];
        foreach (var b in bins)
            for (int c = 0; c < 3; c++) mean[b * 3 + c] = (int)((sum[b * 3 + c] + count[b] / 2) / count[b]);

        var boxes = new List<int[]> { bins };
        while (boxes.Count < n)
        {
            int pick = -1, axis = 0; long bestScore = 0;
            for (int k = 0; k < boxes.Count; k++)
            {
                var box = boxes[k];
                if (box.Length < 2) continue;
                long pixels = 0;
                foreach (var b in box) pixels += count[b];
                for (int c = 0; c < 3; c++)
                {
                    int lo = 255, hi = 0;
                    foreach (var b in box) { int v = mean[b * 3 + c]; if (v < lo) lo = v; if (v > hi) hi = v; }
                    long score = (long)(hi - lo) * pixels;
                    if (hi > lo && score > bestScore) { bestScore = score; pick = k; axis = c; }
                }
            }
            if (pick < 0) break;
            var sorted = boxes[pick].OrderBy(b => mean[b * 3 + axis]).ThenBy(b => b).ToArray();
            long total = 0;
            foreach (var b in sorted) total += count[b];
            long acc = 0; int cut = 1;
            for (int i = 0; i < sorted.Length - 1; i++)
            {
                acc += count[sorted[i]];
                cut = i + 1;
                if (acc * 2 >= total) break;
            }
            boxes[pick] = sorted[..cut];
            boxes.Add(sorted[cut..]);
        }
        var colours = new List<int>(boxes.Count);
        foreach (var box in boxes)
        {
            long cnt = 0, r = 0, g = 0, bl = 0;
            foreach (var b in box) { cnt += count[b]; r += sum[b * 3]; g += sum[b * 3 + 1]; bl += sum[b * 3 + 2]; }
            colours.Add((int)((r + cnt / 2) / cnt) << 16 | (int)((g + cnt / 2) / cnt) << 8 | (int)((bl + cnt / 2) / cnt));
        }
        return colours;
    }
}
