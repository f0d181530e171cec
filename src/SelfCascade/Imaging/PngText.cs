using System.Buffers.Binary;
using System.Text;

namespace SelfCascade.Imaging;

/// <summary>
/// PNG tEXt chunks (PNG spec §11.3.4.3: keyword, NUL, Latin-1 text). SkiaSharp's encoder writes none, so they are
/// inserted after IHDR. Non-Latin-1 values go into iTXt (UTF-8) instead.
/// </summary>
public static class PngText
{
    private static readonly byte[] Signature = [137, 80, 78, 71, 13, 10, 26, 10];

    public static byte[] Insert(byte[] png, IReadOnlyDictionary<string, string> text)
    {
        if (png.Length < 33 || !png.AsSpan(0, 8).SequenceEqual(Signature)) throw new ArgumentException("not a PNG stream");
        int ihdrEnd = 8 + 12 + BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(8));
        using var ms = new MemoryStream();
        ms.Write(png, 0, ihdrEnd);
        foreach (var (key, value) in text)
        {
            if (key.Length is 0 or > 79) throw new ArgumentException($"PNG text keyword '{key}' must be 1-79 characters");
            bool latin1 = value.All(ch => ch <= 0xFF);
            byte[] data = latin1
                ? [.. Encoding.Latin1.GetBytes(key), 0, .. Encoding.Latin1.GetBytes(value)]
                : [.. Encoding.Latin1.GetBytes(key), 0, 0, 0, 0, 0, .. Encoding.UTF8.GetBytes(value)];
            WriteChunk(ms, latin1 ? "tEXt" : "iTXt", data);
        }
        ms.Write(png, ihdrEnd, png.Length - ihdrEnd);
        return ms.ToArray();
    }

    public static IReadOnlyDictionary<string, string> Read(byte[] png)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (png.Length < 8 || !png.AsSpan(0, 8).SequenceEqual(Signature)) return result;
        int pos = 8;
        while (pos + 12 <= png.Length)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(pos));
            if (len < 0 || pos + 12 + len > png.Length) break;
            var type = Encoding.ASCII.GetString(png, pos + 4, 4);
            var data = png.AsSpan(pos + 8, len);
            int nul = data.IndexOf((byte)0);
            if (nul > 0 && type == "tEXt")
                result[Encoding.Latin1.GetString(data[..nul])] = Encoding.Latin1.GetString(data[(nul + 1)..]);
            else if (nul > 0 && type == "iTXt" && data.Length >= nul + 5)
            {
                // keyword NUL compression-flag compression-method language NUL translated-keyword NUL text
                var rest = data[(nul + 3)..];
                int l1 = rest.IndexOf((byte)0);
                if (l1 >= 0)
                {
                    var rest2 = rest[(l1 + 1)..];
                    int l2 = rest2.IndexOf((byte)0);
                    if (l2 >= 0) result[Encoding.Latin1.GetString(data[..nul])] = Encoding.UTF8.GetString(rest2[(l2 + 1)..]);
                }
            }
            if (type == "IEND") break;
            pos += 12 + len;
        }
        return result;
    }

    private static void WriteChunk(Stream s, string type, byte[] data)
    {
        Span<byte> head = stackalloc byte[8];
        BinaryPrimitives.WriteInt32BigEndian(head, data.Length);
        Encoding.ASCII.GetBytes(type, head[4..]);
        s.Write(head);
        s.Write(data);
        uint crc = Crc32(head[4..], data);
        Span<byte> c = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(c, crc);
        s.Write(c);
    }

    private static readonly uint[] CrcTable = Enumerable.Range(0, 256).Select(n =>
    {
        uint c = (uint)n;
        for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    /// <summary>The PNG CRC-32 (ISO 3309) over chunk type and data.</summary>
    private static uint Crc32(ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (var b in type) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        foreach (var b in data) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }
}
