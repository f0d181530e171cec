using System.Buffers.Binary;
using System.Security;
using System.Text;
using System.Xml;
using SelfCascade.Imaging;
using SkiaSharp;

namespace SelfCascade.Video.Output;

/// <summary>
/// Lossless animated WebP. SkiaSharp encodes single lossless frames (VP8L) but not animations, so each frame's VP8L
/// bitstream is taken out of Skia's output and wrapped in the animation container by hand (RIFF: VP8X, ANIM, one
/// ANMF per frame, then an XMP chunk holding the generation parameters). Pixels round-trip exactly.
/// </summary>
public static class AnimatedWebP
{
    /// <summary>The XMP namespace of the parameters (a URN: nothing is ever fetched from it).</summary>
    public const string XmpNamespace = "urn:selfcascade:parameters:1";

    public static void Write(Stream output, IReadOnlyList<RgbImage> frames, double fps, IReadOnlyDictionary<string, string>? metadata = null, int loopCount = 0)
    {
        var (w, h) = VideoEncoding.Validate(frames, fps);
        if (w > 16384 || h > 16384) throw new ArgumentException($"WebP frames are at most 16384 px a side, got {w}x{h}");
        var durations = VideoEncoding.Durations(frames.Count, fps, 1000);
        var xmp = metadata is { Count: > 0 } ? Encoding.UTF8.GetBytes(BuildXmp(metadata)) : null;

        using var body = new MemoryStream();
        Span<byte> vp8x = stackalloc byte[10];
        vp8x[0] = (byte)(0x02 | (xmp != null ? 0x04 : 0)); // animation, XMP
        WriteUInt24(vp8x[4..], w - 1);
        WriteUInt24(vp8x[7..], h - 1);
        WriteChunk(body, "VP8X", vp8x);
        Span<byte> anim = stackalloc byte[6];
        BinaryPrimitives.WriteUInt32LittleEndian(anim, 0xFFFFFFFF); // background: opaque white (BGRA)
        BinaryPrimitives.WriteUInt16LittleEndian(anim[4..], (ushort)loopCount);
        WriteChunk(body, "ANIM", anim);
        for (int f = 0; f < frames.Count; f++)
        {
            var vp8l = EncodeLosslessFrame(frames[f]);
            var anmf = new byte[16 + 8 + vp8l.Length + (vp8l.Length & 1)];
            // Offset (0, 0), the frame's size, its duration; flags: no blending (bit 1), no disposal.
            WriteUInt24(anmf.AsSpan(6), w - 1);
            WriteUInt24(anmf.AsSpan(9), h - 1);
            WriteUInt24(anmf.AsSpan(12), durations[f]);
            anmf[15] = 0x02;
            Encoding.ASCII.GetBytes("VP8L", anmf.AsSpan(16));
            BinaryPrimitives.WriteUInt32LittleEndian(anmf.AsSpan(20), (uint)vp8l.Length);
            vp8l.CopyTo(anmf, 24);
            WriteChunk(body, "ANMF", anmf);
        }
        if (xmp != null) WriteChunk(body, "XMP ", xmp);

        Span<byte> head = stackalloc byte[12];
        Encoding.ASCII.GetBytes("RIFF", head);
        BinaryPrimitives.WriteUInt32LittleEndian(head[4..], checked((uint)(4 + body.Length)));
        Encoding.ASCII.GetBytes("WEBP", head[8..]);
        output.Write(head);
        body.Position = 0;
        body.CopyTo(output);
    }

    public static void Save(string path, IReadOnlyList<RgbImage> frames, double fps, IReadOnlyDictionary<string, string>? metadata = null) =>
        IO.AtomicFile.Write(path, s => Write(s, frames, fps, metadata));

    /// <summary>The parameters in the file's XMP chunk (empty when there is none).</summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(byte[] webp)
    {
        foreach (var (type, data) in Chunks(webp))
            if (type == "XMP ") return ParseXmp(Encoding.UTF8.GetString(data));
        return new Dictionary<string, string>();
    }

    /// <summary>The top-level chunks of a RIFF WebP file (type, payload), bounded by the input's size.</summary>
    public static IEnumerable<(string Type, byte[] Data)> Chunks(byte[] webp)
    {
        if (webp.Length < 12 || !webp.AsSpan(0, 4).SequenceEqual("RIFF"u8) || !webp.AsSpan(8, 4).SequenceEqual("WEBP"u8))
            throw new InvalidDataException("not a RIFF WebP stream");
        long end = Math.Min(webp.Length, 8L + BinaryPrimitives.ReadUInt32LittleEndian(webp.AsSpan(4)));
        long pos = 12;
        while (pos + 8 <= end)
        {
            var type = Encoding.ASCII.GetString(webp, (int)pos, 4);
            long size = BinaryPrimitives.ReadUInt32LittleEndian(webp.AsSpan((int)pos + 4));
            if (pos + 8 + size > end) throw new InvalidDataException($"WebP chunk '{type}' runs past the end of the file");
            yield return (type, webp.AsSpan((int)pos + 8, (int)size).ToArray());
            pos += 8 + size + (size & 1);
        }
    }

    /// <summary>One frame as a lossless VP8L bitstream (the payload of Skia's "VP8L" chunk).</summary>
    private static byte[] EncodeLosslessFrame(RgbImage frame)
    {
        var info = new SKImageInfo(frame.Width, frame.Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bmp = new SKBitmap(info);
        var rgba = new byte[frame.Width * frame.Height * 4];
        var p = frame.Pixels;
        for (int i = 0, j = 0; i < p.Length; i += 3, j += 4) { rgba[j] = p[i]; rgba[j + 1] = p[i + 1]; rgba[j + 2] = p[i + 2]; rgba[j + 3] = 255; }
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bmp.GetPixels(), rgba.Length);
        using var pixmap = bmp.PeekPixels();
        using var data = pixmap.Encode(new SKWebpEncoderOptions(SKWebpEncoderCompression.Lossless, 75))
            ?? throw new InvalidOperationException("WebP encoding failed");
        foreach (var (type, payload) in Chunks(data.ToArray()))
            if (type == "VP8L") return payload;
        throw new InvalidOperationException("the WebP encoder wrote no lossless (VP8L) frame");
    }

    private static string BuildXmp(IReadOnlyDictionary<string, string> metadata)
    {
        var sb = new StringBuilder();
        sb.Append("<?xpacket begin=\"\uFEFF\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n");
        sb.Append("<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n");
        sb.Append("<rdf:Description rdf:about=\"\" xmlns:sc=\"").Append(XmpNamespace).Append("\">\n");
        foreach (var (key, value) in metadata)
        {
            try { XmlConvert.VerifyNCName(key); }
            catch (XmlException) { throw new ArgumentException($"metadata key '{key}' is not an XML name"); }
            sb.Append("<sc:").Append(key).Append('>').Append(SecurityElement.Escape(value).Replace("\n", "&#10;").Replace("\r", "&#13;"))
              .Append("</sc:").Append(key).Append(">\n");
        }
        sb.Append("</rdf:Description></rdf:RDF></x:xmpmeta>\n<?xpacket end=\"w\"?>");
        return sb.ToString();
    }

    private static Dictionary<string, string> ParseXmp(string xmp)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        // No DTDs, no external resolution: the packet is data only.
        var settings = new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null, MaxCharactersInDocument = 16 << 20 };
        using var reader = XmlReader.Create(new StringReader(xmp), settings);
        reader.MoveToContent();
        while (!reader.EOF)
        {
            // ReadElementContentAsString moves past the element itself, so no extra Read() after it.
            if (reader.NodeType == XmlNodeType.Element && reader.NamespaceURI == XmpNamespace)
                result[reader.LocalName] = reader.ReadElementContentAsString();
            else reader.Read();
        }
        return result;
    }

    private static void WriteChunk(Stream s, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> head = stackalloc byte[8];
        Encoding.ASCII.GetBytes(type, head);
        BinaryPrimitives.WriteUInt32LittleEndian(head[4..], (uint)data.Length);
        s.Write(head);
        s.Write(data);
        if ((data.Length & 1) != 0) s.WriteByte(0);
    }

    private static void WriteUInt24(Span<byte> dst, int value)
    {
        if (value < 0 || value > 0xFFFFFF) throw new ArgumentOutOfRangeException(nameof(value));
        dst[0] = (byte)value; dst[1] = (byte)(value >> 8); dst[2] = (byte)(value >> 16);
    }
}
