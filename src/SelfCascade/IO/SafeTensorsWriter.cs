using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace SelfCascade.IO;

/// <summary>Writes tensors in the safetensors format, atomically (temporary file, then rename).</summary>
public static class SafeTensorsWriter
{
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        var header = new Dictionary<string, object>(StringComparer.Ordinal);
        if (metadata is { Count: > 0 }) header["__metadata__"] = metadata;
        long offset = 0;
        foreach (var (name, t) in list)
        {
            long bytes = t.NumberOfElements * t.ElementSize;
            header[name] = new Dictionary<string, object>
            {
                ["dtype"] = SafeTensorsDTypes.FromScalarType(t.dtype),
                ["shape"] = t.shape,
                ["data_offsets"] = new[] { offset, offset + bytes },
            };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        // Pad the header with spaces to an 8-byte boundary, as the reference writer does.
        int pad = (8 - json.Length % 8) % 8;
        var headerBytes = new byte[json.Length + pad];
        json.CopyTo(headerBytes, 0);
        for (int i = json.Length; i < headerBytes.Length; i++) headerBytes[i] = (byte)' ';

        AtomicFile.Write(path, fs =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)headerBytes.Length);
            fs.Write(len);
            fs.Write(headerBytes);
            foreach (var (_, t) in list)
            {
                using var cpu = t.detach().cpu().contiguous();
                fs.Write(cpu.bytes);
            }
        }, bufferSize: 1 << 20);
    }

    /// <summary>
    /// Writes a file whose entries are known up front (name, dtype, shape) and whose tensors are produced one at a
    /// time by <paramref name="produce"/> (disposed after writing): peak memory is one tensor, for converting
    /// checkpoints larger than memory allows twice. Same layout and atomic rename as <see cref="Save"/>.
    /// </summary>
    public static void SaveStreaming(string path, IReadOnlyList<(string Name, ScalarType DType, long[] Shape)> entries,
        Func<string, Tensor> produce, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = entries.OrderBy(e => e.Name, StringComparer.Ordinal).ToList();
        var header = new Dictionary<string, object>(StringComparer.Ordinal);
        if (metadata is { Count: > 0 }) header["__metadata__"] = metadata;
        long offset = 0;
        foreach (var (name, dtype, shape) in list)
        {
            long bytes = shape.Aggregate(1L, (a, b) => a * b) * SafeTensorsDTypes.SizeOf(SafeTensorsDTypes.FromScalarType(dtype));
            header[name] = new Dictionary<string, object>
            {
                ["dtype"] = SafeTensorsDTypes.FromScalarType(dtype), ["shape"] = shape, ["data_offsets"] = new[] { offset, offset + bytes },
            };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int pad = (8 - json.Length % 8) % 8;
        var headerBytes = new byte[json.Length + pad];
        json.CopyTo(headerBytes, 0);
        for (int i = json.Length; i < headerBytes.Length; i++) headerBytes[i] = (byte)' ';
        var full = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        var tmp = full + ".tmp-" + Environment.ProcessId;
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> len = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)headerBytes.Length);
                fs.Write(len);
                fs.Write(headerBytes);
                foreach (var (name, dtype, shape) in list)
                {
                    using var t = produce(name);
                    if (t.dtype != dtype || !t.shape.SequenceEqual(shape))
                        throw new InvalidOperationException($"{path}: tensor '{name}' came as {t.dtype} [{string.Join(",", t.shape)}], announced {dtype} [{string.Join(",", shape)}]");
                    using var cpu = t.detach().cpu().contiguous();
                    fs.Write(cpu.bytes);
                }
                fs.Flush(true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }
}
