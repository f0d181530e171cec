using System.Buffers.Binary;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.IO;

/// <summary>A tensor record of a safetensors header: dtype, shape and its byte span inside the data section.</summary>
public sealed record SafeTensorEntry(string Name, string DType, long[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
    public ScalarType ScalarType => SafeTensorsDTypes.ToScalarType(DType);
}

/// <summary>The file format's problem, with the file named: the header is validated before anything is allocated.</summary>
public sealed class SafeTensorsFormatException(string path, string problem)
    : IOException($"{path}: {problem}")
{
    public string FilePath { get; } = path;
    public string Problem { get; } = problem;
}

/// <summary>dtype names of the safetensors format and their sizes.</summary>
public static class SafeTensorsDTypes
{
    private static readonly Dictionary<string, (ScalarType Type, int Size)> Known = new()
    {
        ["F64"] = (ScalarType.Float64, 8), ["F32"] = (ScalarType.Float32, 4), ["F16"] = (ScalarType.Float16, 2),
        ["BF16"] = (ScalarType.BFloat16, 2), ["I64"] = (ScalarType.Int64, 8), ["I32"] = (ScalarType.Int32, 4),
        ["I16"] = (ScalarType.Int16, 2), ["I8"] = (ScalarType.Int8, 1), ["U8"] = (ScalarType.Byte, 1),
        ["BOOL"] = (ScalarType.Bool, 1),
    };

    public static bool IsKnown(string dtype) => Known.ContainsKey(dtype);
    public static int SizeOf(string dtype) => Known[dtype].Size;
    public static ScalarType ToScalarType(string dtype) => Known[dtype].Type;

    public static string FromScalarType(ScalarType type) =>
        Known.FirstOrDefault(kv => kv.Value.Type == type).Key
        ?? throw new NotSupportedException($"dtype {type} cannot be stored in safetensors");
}

/// <summary>
/// Reader of the safetensors format (8-byte little-endian header length, JSON header, raw little-endian data).
/// Opening validates the whole header against the file size (docs/ARCHITECTURE.md §4); reading streams one tensor at a time.
/// </summary>
public sealed class SafeTensorsFile : ITensorSource
{
    /// <summary>The format's own limit on the header (100 MB), checked before the header is read.</summary>
    public const long MaxHeaderBytes = 100_000_000;
    private const int ChunkBytes = 4 << 20;

    private readonly FileStream _stream;
    private readonly long _dataStart;

    public string Path { get; }
    public long FileSize { get; }
    public IReadOnlyDictionary<string, SafeTensorEntry> Entries { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    private SafeTensorsFile(string path, FileStream stream, long dataStart, Dictionary<string, SafeTensorEntry> entries,
        Dictionary<string, string> metadata)
    {
        Path = path; _stream = stream; _dataStart = dataStart; FileSize = stream.Length;
        Entries = entries; Metadata = metadata;
    }

    public static SafeTensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.RandomAccess);
        try
        {
            var (entries, metadata, dataStart) = ReadHeader(path, stream);
            return new SafeTensorsFile(path, stream, dataStart, entries, metadata);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Reads only the header (names, dtypes, shapes) of a file.</summary>
    public static IReadOnlyDictionary<string, SafeTensorEntry> ReadEntries(string path)
    {
        using var f = Open(path);
        return f.Entries;
    }

    private static (Dictionary<string, SafeTensorEntry>, Dictionary<string, string>, long) ReadHeader(string path, FileStream stream)
    {
        long size = stream.Length;
        if (size < 8) throw new SafeTensorsFormatException(path, $"file is {size} bytes, too short for a safetensors header");
        Span<byte> lenBytes = stackalloc byte[8];
        stream.ReadExactly(lenBytes);
        ulong headerLen = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (headerLen > (ulong)(size - 8))
            throw new SafeTensorsFormatException(path, $"header claims {headerLen} bytes but the file has only {size - 8} after the length field (truncated or not a safetensors file)");
        if (headerLen > MaxHeaderBytes)
            throw new SafeTensorsFormatException(path, $"header of {headerLen} bytes exceeds the format's limit of {MaxHeaderBytes}");
        if (headerLen < 2) throw new SafeTensorsFormatException(path, "header is empty");
        var header = new byte[headerLen];
        stream.ReadExactly(header);
        long dataStart = 8 + (long)headerLen, dataLen = size - dataStart;

        JsonDocument doc;
        try { doc = JsonDocument.Parse(header); }
        catch (JsonException e) { throw new SafeTensorsFormatException(path, $"header is not valid JSON ({e.Message})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SafeTensorsFormatException(path, "header JSON is not an object");
            var entries = new Dictionary<string, SafeTensorEntry>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object)
                        throw new SafeTensorsFormatException(path, "__metadata__ is not an object");
                    foreach (var m in prop.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                    continue;
                }
                // JSON allows a repeated name; a second entry would silently replace the first.
                if (entries.ContainsKey(prop.Name)) throw new SafeTensorsFormatException(path, $"tensor '{prop.Name}' appears twice in the header");
                entries[prop.Name] = ParseEntry(path, prop, dataLen);
            }
            // Spans must not overlap (a hostile header could alias one region as many tensors).
            SafeTensorEntry? prev = null;
            foreach (var e in entries.Values.Where(e => e.ByteLength > 0).OrderBy(e => e.Begin))
            {
                if (prev != null && e.Begin < prev.End)
                    throw new SafeTensorsFormatException(path, $"tensors '{prev.Name}' [{prev.Begin},{prev.End}) and '{e.Name}' [{e.Begin},{e.End}) overlap");
                prev = e;
            }
            return (entries, metadata, dataStart);
        }
    }

    private static SafeTensorEntry ParseEntry(string path, JsonProperty prop, long dataLen)
    {
        var name = prop.Name;
        var v = prop.Value;
        if (v.ValueKind != JsonValueKind.Object) throw new SafeTensorsFormatException(path, $"tensor '{name}': entry is not an object");
        if (!v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw new SafeTensorsFormatException(path, $"tensor '{name}': missing dtype");
        var dtype = dt.GetString()!;
        if (!SafeTensorsDTypes.IsKnown(dtype)) throw new SafeTensorsFormatException(path, $"tensor '{name}': unsupported dtype '{dtype}'");
        if (!v.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw new SafeTensorsFormatException(path, $"tensor '{name}': missing shape");
        var shape = new List<long>();
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var n) || n < 0)
                throw new SafeTensorsFormatException(path, $"tensor '{name}': invalid dimension {d.GetRawText()}");
            shape.Add(n);
        }
        if (!v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new SafeTensorsFormatException(path, $"tensor '{name}': data_offsets must be [begin, end]");
        if (!off[0].TryGetInt64(out var begin) || !off[1].TryGetInt64(out var end) || begin < 0 || end < begin)
            throw new SafeTensorsFormatException(path, $"tensor '{name}': invalid data_offsets {off.GetRawText()}");
        if (end > dataLen)
            throw new SafeTensorsFormatException(path, $"tensor '{name}': data [{begin},{end}) lies beyond the data section of {dataLen} bytes (file truncated?)");
        long expected = SafeTensorsDTypes.SizeOf(dtype);
        foreach (var d in shape)
        {
            try { expected = checked(expected * d); }
            catch (OverflowException) { throw new SafeTensorsFormatException(path, $"tensor '{name}': shape [{string.Join(",", shape)}] overflows"); }
        }
        if (expected != end - begin)
            throw new SafeTensorsFormatException(path, $"tensor '{name}': shape [{string.Join(",", shape)}] x {dtype} needs {expected} bytes but its span holds {end - begin}");
        return new SafeTensorEntry(name, dtype, shape.ToArray(), begin, end);
    }

    public SafeTensorEntry Entry(string name) =>
        Entries.TryGetValue(name, out var e) ? e : throw new KeyNotFoundException($"{Path}: no tensor named '{name}'");

    /// <summary>Reads a tensor into a new CPU tensor of the file's dtype (or converted to <paramref name="dtype"/>).</summary>
    public Tensor Read(string name, ScalarType? dtype = null)
    {
        var e = Entry(name);
        var raw = torch.empty(e.Shape, e.ScalarType);
        FillRaw(e, raw);
        if (dtype is null || dtype == e.ScalarType) return raw;
        using (raw) return raw.to_type(dtype.Value);
    }

    /// <summary>
    /// Streams a tensor into an existing tensor (a parameter, on any device, of any float dtype), converting on the
    /// way. Peak extra memory is one tensor in the file's dtype.
    /// </summary>
    public void ReadInto(string name, Tensor destination)
    {
        var e = Entry(name);
        if (!destination.shape.SequenceEqual(e.Shape))
            throw new ArgumentException($"{Path}: tensor '{name}' has shape [{string.Join(",", e.Shape)}], destination [{string.Join(",", destination.shape)}]");
        using var _ = torch.no_grad();
        if (destination.device_type == DeviceType.CPU && destination.dtype == e.ScalarType && destination.is_contiguous())
        {
            FillRaw(e, destination);
            return;
        }
        using var staging = torch.empty(e.Shape, e.ScalarType);
        FillRaw(e, staging);
        destination.copy_(staging);
    }

    private void FillRaw(SafeTensorEntry e, Tensor target)
    {
        if (e.ByteLength == 0) return;
        if (e.ByteLength > int.MaxValue)
            throw new NotSupportedException($"{Path}: tensor '{e.Name}' is larger than 2 GiB");
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian hosts are not supported");
        // `bytes` is a span over the CPU tensor's own storage: the file is read straight into it, in chunks.
        var dest = target.bytes;
        lock (_stream)
        {
            _stream.Position = _dataStart + e.Begin;
            int done = 0;
            while (done < dest.Length)
            {
                int read = _stream.Read(dest.Slice(done, Math.Min(ChunkBytes, dest.Length - done)));
                if (read <= 0) throw new SafeTensorsFormatException(Path, $"tensor '{e.Name}': unexpected end of file");
                done += read;
            }
        }
    }

    public void Dispose() => _stream.Dispose();
}
