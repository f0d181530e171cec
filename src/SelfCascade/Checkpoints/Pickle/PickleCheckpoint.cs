using System.Buffers.Binary;
using System.IO.Compression;
using System.Numerics;
using SelfCascade.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Checkpoints.Pickle;

/// <summary>
/// A PyTorch checkpoint (<c>.ckpt</c>, <c>.pt</c>, <c>.pth</c>, <c>.bin</c>) read through the allow-list unpickler
/// (<see cref="PickleMachine"/>): nothing in the file is ever run. Reads torch.save's zip format
/// (<c>NAME/data.pkl</c> + <c>NAME/data/KEY</c> storages) and the legacy format (<c>_use_new_zipfile_serialization=False</c>:
/// magic number, protocol, sys_info, the main pickle, storage keys, raw storages). The state dict is the root dict,
/// or its <c>"state_dict"</c> entry when there is one (Lightning/SD checkpoints); entries that are not tensors
/// (<c>global_step</c>, …) are skipped. Tensors may be views (offset, strides) of shared storages; they are read
/// one at a time. In <see cref="Entries"/>, Begin/End are byte offsets inside the tensor's storage.
/// </summary>
public sealed class PickleCheckpoint : ITensorSource
{
    private static readonly BigInteger LegacyMagicNumber = BigInteger.Parse("119547037146038801333356");
    private const int LegacyProtocol = 1001;

    private readonly FileStream _file;
    private readonly ZipArchive? _zip;
    private readonly Dictionary<string, ZipArchiveEntry> _zipStorages = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _legacyOffsets = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TensorRef> _tensors = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SafeTensorEntry> _entries = new(StringComparer.Ordinal);

    public string Path { get; }
    public IReadOnlyDictionary<string, SafeTensorEntry> Entries => _entries;
    /// <summary>"zip" or "legacy".</summary>
    public string Format { get; }
    /// <summary>Top-level (or state_dict) entries that were not tensors, skipped (e.g. global_step).</summary>
    public IReadOnlyList<string> SkippedKeys { get; private set; } = [];
    /// <summary>True when the tensors came from the root's "state_dict" entry.</summary>
    public bool NestedStateDict { get; private set; }

    public PickleLimits Limits { get; }

    private PickleCheckpoint(string path, FileStream file, ZipArchive? zip, PickleLimits limits)
    {
        Path = path; _file = file; _zip = zip; Limits = limits; Format = zip is null ? "legacy" : "zip";
    }

    /// <summary>True when the file starts like a torch.save file (a zip or a protocol-2 pickle).</summary>
    public static bool LooksLikeCheckpoint(string path)
    {
        using var f = File.OpenRead(path);
        Span<byte> head = stackalloc byte[4];
        int n = f.ReadAtLeast(head, 4, throwOnEndOfStream: false);
        return n >= 2 && ((head[0] == 'P' && head[1] == 'K') || head[0] == 0x80);
    }

    public static PickleCheckpoint Open(string path, PickleLimits? limits = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        limits ??= new PickleLimits();
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 4096, FileOptions.RandomAccess);
        PickleCheckpoint? ckpt = null;
        try
        {
            Span<byte> head = stackalloc byte[4];
            int n = file.ReadAtLeast(head, 4, throwOnEndOfStream: false);
            file.Position = 0;
            if (n >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4)
            {
                ZipArchive zip;
                try { zip = new ZipArchive(file, ZipArchiveMode.Read, leaveOpen: true); }
                catch (Exception e) when (e is InvalidDataException or IOException or ArgumentException or NotSupportedException)
                {
                    throw new PickleFormatException(path, $"not a readable zip archive ({e.Message.Split('\n')[0]})");
                }
                ckpt = new PickleCheckpoint(path, file, zip, limits);
                ckpt.ReadZip();
            }
            else
            {
                // Anything else is read as the legacy format: a pickle stream (the unpickler is safe on any input).
                if (n == 0) throw new PickleFormatException(path, "empty file, not a PyTorch checkpoint");
                ckpt = new PickleCheckpoint(path, file, null, limits);
                ckpt.ReadLegacy();
            }
            return ckpt;
        }
        catch (Exception e) when (e is not PickleFormatException and not OutOfMemoryException)
        {
            ckpt?.Dispose();
            if (ckpt is null) file.Dispose();
            throw new PickleFormatException(path, $"unreadable checkpoint ({e.GetType().Name}: {e.Message.Split('\n')[0]})");
        }
        catch
        {
            ckpt?.Dispose();
            if (ckpt is null) file.Dispose();
            throw;
        }
    }

    private PickleFormatException Bad(string problem) => new(Path, problem);

    // ---- zip format -------------------------------------------------------------------------------------------

    private void ReadZip()
    {
        var pkls = _zip!.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) &&
                                            e.FullName.IndexOf('/') == e.FullName.Length - "/data.pkl".Length).ToList();
        if (pkls.Count != 1)
            throw Bad(pkls.Count == 0 ? "zip archive has no NAME/data.pkl (not a torch.save file)" : "zip archive has several data.pkl records");
        var prefix = pkls[0].FullName[..^"data.pkl".Length];
        foreach (var e in _zip.Entries)
        {
            if (!e.FullName.StartsWith(prefix + "data/", StringComparison.Ordinal)) continue;
            var key = e.FullName[(prefix.Length + 5)..];
            if (!_zipStorages.TryAdd(key, e)) throw Bad($"storage '{key}' appears twice in the archive");
        }
        if (_zip.GetEntry(prefix + "byteorder") is { } bo)
        {
            var order = ReadSmallEntry(bo, 16);
            if (order != "little") throw Bad($"byteorder '{order}' is not supported (only little-endian files)");
        }
        var pkl = pkls[0];
        if (pkl.Length > Limits.MaxObjectBytes) throw Bad($"data.pkl declares {pkl.Length} bytes, over the limit of {Limits.MaxObjectBytes}");
        var buffer = new MemoryStream();
        using (var s = pkl.Open()) CopyAtMost(s, buffer, pkl.Length, "data.pkl");
        buffer.Position = 0;
        var root = PickleMachine.Load(buffer, Path, ZipPersistentLoad, Limits);
        Collect(root);
    }

    private string ReadSmallEntry(ZipArchiveEntry e, int max)
    {
        if (e.Length > max) throw Bad($"{e.FullName} is {e.Length} bytes, expected at most {max}");
        var ms = new MemoryStream();
        using (var s = e.Open()) CopyAtMost(s, ms, e.Length, e.FullName);
        return System.Text.Encoding.ASCII.GetString(ms.ToArray()).Trim();
    }

    /// <summary>Copies exactly the declared length (a zip entry may lie about it in either direction).</summary>
    private void CopyAtMost(Stream from, Stream to, long declared, string what)
    {
        var buf = new byte[81920];
        long total = 0;
        while (true)
        {
            int n = from.Read(buf, 0, (int)Math.Min(buf.Length, declared - total + 1));
            if (n <= 0) break;
            total += n;
            if (total > declared) throw Bad($"{what} holds more than its declared {declared} bytes");
            to.Write(buf, 0, n);
        }
        if (total != declared) throw Bad($"{what} holds {total} bytes, {declared} declared (truncated?)");
    }

    private object? ZipPersistentLoad(object? pid)
    {
        var (key, dtype, numel, _) = ParsePid(pid);
        if (!_zipStorages.TryGetValue(key, out var entry)) throw Bad($"storage '{key}' is not in the archive");
        long bytes = StorageBytes(key, dtype, numel);
        if (bytes > entry.Length) throw Bad($"storage '{key}' declares {numel} x {dtype} ({bytes} bytes) but its record holds {entry.Length}");
        return new StorageRef(key, dtype, numel);
    }

    private long StorageBytes(string key, string dtype, long numel)
    {
        try { return checked(numel * SafeTensorsDTypes.SizeOf(dtype)); }
        catch (OverflowException) { throw Bad($"storage '{key}': {numel} elements overflow"); }
    }

    /// <summary>('storage', torch.XStorage, key, location, numel[, view_metadata]).</summary>
    private (string Key, string DType, long Numel, PyTuple? View) ParsePid(object? pid)
    {
        if (pid is not PyTuple t || t.Count < 5 || t[0] is not "storage")
            throw Bad($"persistent id is {PickleMachine.Describe(pid)}, not ('storage', type, key, location, numel)");
        if (t[1] is not PyGlobal { Kind: AllowedGlobal.StorageType, StorageDType: string dtype })
            throw Bad($"persistent id names {PickleMachine.Describe(t[1])}, not a torch storage type");
        if (t[2] is not string key || key.Length == 0 || key.Length > 256 || !key.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
            throw Bad("persistent id has an invalid storage key");
        if (!PyInt.TryToLong(t[4], out long numel) || numel < 0) throw Bad($"storage '{key}': invalid element count");
        return (key, dtype, numel, t.Count > 5 ? t[5] as PyTuple : null);
    }

    // ---- legacy format ----------------------------------------------------------------------------------------

    private void ReadLegacy()
    {
        object? NoPersistent(object? _) => throw Bad("unexpected persistent id in the legacy header");
        var magic = PickleMachine.Load(_file, Path, NoPersistent, Limits);
        if (!(magic is BigInteger m && m == LegacyMagicNumber))
            throw Bad("not a PyTorch checkpoint (legacy magic number missing)");
        var protocol = PickleMachine.Load(_file, Path, NoPersistent, Limits);
        if (protocol is not long p || p != LegacyProtocol) throw Bad($"legacy protocol {PickleMachine.Describe(protocol)} is not {LegacyProtocol}");
        var sysInfo = PickleMachine.Load(_file, Path, NoPersistent, Limits);
        if (sysInfo is PyDict info && info.TryGet("little_endian", out var le) && le is false)
            throw Bad("big-endian legacy checkpoints are not supported");

        var roots = new Dictionary<string, (string DType, long Numel)>(StringComparer.Ordinal);
        object? LegacyPersistentLoad(object? pid)
        {
            var (key, dtype, numel, view) = ParsePid(pid);
            if (roots.TryGetValue(key, out var known))
            {
                if (known.DType != dtype || known.Numel != numel) throw Bad($"storage '{key}' is declared twice with different types or sizes");
            }
            else roots[key] = (dtype, numel);
            if (view is null) return new StorageRef(key, dtype, numel);
            // (view_key, offset, view_size): an old-style storage view into the root storage.
            if (view.Count != 3 || !PyInt.TryToLong(view[1], out long off) || !PyInt.TryToLong(view[2], out long size) ||
                off < 0 || size < 0 || off > numel || size > numel - off)
                throw Bad($"storage '{key}': invalid view metadata");
            return new StorageRef(key, dtype, size, off);
        }
        var root = PickleMachine.Load(_file, Path, LegacyPersistentLoad, Limits);
        var keys = PickleMachine.Load(_file, Path, NoPersistent, Limits);
        if (keys is not PyList list || list.Items.Any(k => k is not string)) throw Bad("legacy storage key list is missing");
        foreach (string key in list.Items.Cast<string>())
        {
            if (!roots.TryGetValue(key, out var info2)) throw Bad($"storage '{key}' is listed but never used");
            var header = new byte[8];
            if (_file.ReadAtLeast(header, 8, throwOnEndOfStream: false) != 8) throw Bad($"storage '{key}': file ends before its size");
            long numel = BinaryPrimitives.ReadInt64LittleEndian(header);
            if (numel != info2.Numel) throw Bad($"storage '{key}' holds {numel} elements, {info2.Numel} declared");
            long bytes = StorageBytes(key, info2.DType, numel);
            if (bytes > _file.Length - _file.Position) throw Bad($"storage '{key}' needs {bytes} bytes, the file has {_file.Length - _file.Position} left (truncated?)");
            if (!_legacyOffsets.TryAdd(key, _file.Position)) throw Bad($"storage '{key}' is listed twice");
            _file.Position += bytes;
        }
        var absent = roots.Keys.Where(k => !_legacyOffsets.ContainsKey(k)).ToList();
        if (absent.Count > 0) throw Bad($"storages {string.Join(", ", absent.Take(5))} have no data in the file");
        Collect(root);
    }

    // ---- tensors ----------------------------------------------------------------------------------------------

    private void Collect(object? root)
    {
        if (root is not PyDict top) throw Bad($"the checkpoint holds {PickleMachine.Describe(root)}, not a dict of tensors (a pickled module cannot be read)");
        var dict = top;
        if (top.TryGet("state_dict", out var sd) && sd is PyDict nested)
        {
            dict = nested;
            NestedStateDict = true;
        }
        var skipped = new List<string>();
        foreach (var (k, v) in dict.Items)
        {
            var name = k as string;
            if (name is null || v is not TensorRef t) { skipped.Add(name ?? PickleMachine.Describe(k)); continue; }
            _tensors[name] = t;
            int size = SafeTensorsDTypes.SizeOf(t.Storage.DType);
            long numel = t.Shape.Aggregate(1L, (a, b) => a * b);
            long begin = (t.Storage.ElementOffset + t.Offset) * size;
            _entries[name] = new SafeTensorEntry(name, t.Storage.DType, t.Shape, begin, begin + numel * size);
        }
        SkippedKeys = skipped;
        if (_tensors.Count == 0) throw Bad($"no tensors found (keys: {string.Join(", ", skipped.Take(10))})");
    }

    public SafeTensorEntry Entry(string name) =>
        _entries.TryGetValue(name, out var e) ? e : throw new KeyNotFoundException($"{Path}: no tensor named '{name}'");

    public Tensor Read(string name, ScalarType? dtype = null)
    {
        var e = Entry(name);
        var raw = torch.empty(e.Shape, e.ScalarType);
        try { Fill(name, raw); }
        catch { raw.Dispose(); throw; }
        if (dtype is null || dtype == e.ScalarType) return raw;
        using (raw) return raw.to_type(dtype.Value);
    }

    public void ReadInto(string name, Tensor destination)
    {
        var e = Entry(name);
        if (!destination.shape.SequenceEqual(e.Shape))
            throw new ArgumentException($"{Path}: tensor '{name}' has shape [{string.Join(",", e.Shape)}], destination [{string.Join(",", destination.shape)}]");
        using var _ = torch.no_grad();
        if (destination.device_type == DeviceType.CPU && destination.dtype == e.ScalarType && destination.is_contiguous())
        {
            Fill(name, destination);
            return;
        }
        using var staging = Read(name);
        destination.copy_(staging);
    }

    /// <summary>Fills a contiguous CPU tensor of the tensor's dtype and shape.</summary>
    private void Fill(string name, Tensor target)
    {
        var t = _tensors[name];
        long numel = t.Shape.Aggregate(1L, (a, b) => a * b);
        if (numel == 0) return;
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian hosts are not supported");
        int size = SafeTensorsDTypes.SizeOf(t.Storage.DType);
        if (IsContiguous(t.Shape, t.Stride))
        {
            if (numel * size > int.MaxValue) throw new NotSupportedException($"{Path}: tensor '{name}' is larger than 2 GiB");
            ReadStorage(t.Storage, t.Offset, target.bytes, name);
            return;
        }
        // A strided view: read the span it covers, then gather with as_strided.
        long extent = 1;
        for (int i = 0; i < t.Shape.Length; i++) extent += (t.Shape[i] - 1) * t.Stride[i];
        if (extent * size > int.MaxValue) throw new NotSupportedException($"{Path}: tensor '{name}' spans more than 2 GiB");
        using var span = torch.empty([extent], target.dtype);
        ReadStorage(t.Storage, t.Offset, span.bytes, name);
        using var view = span.as_strided(t.Shape, t.Stride, 0);
        using (torch.no_grad()) target.copy_(view);
    }

    private static bool IsContiguous(long[] shape, long[] stride)
    {
        long expected = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            if (shape[i] != 1 && stride[i] != expected) return false;
            expected *= shape[i];
        }
        return true;
    }

    private void ReadStorage(StorageRef s, long elementOffset, Span<byte> dest, string tensor)
    {
        int size = SafeTensorsDTypes.SizeOf(s.DType);
        long skip = (s.ElementOffset + elementOffset) * size;
        try
        {
            lock (_file)
            {
                if (_zip is null)
                {
                    _file.Position = _legacyOffsets[s.Key] + skip;
                    ReadExactly(_file, dest, tensor);
                    return;
                }
                using var stream = _zipStorages[s.Key].Open();
                if (stream.CanSeek) stream.Position = skip;
                else
                {
                    var sink = new byte[Math.Min(skip, 1 << 20)];
                    for (long left = skip; left > 0;)
                    {
                        int n = stream.Read(sink, 0, (int)Math.Min(sink.Length, left));
                        if (n <= 0) throw Bad($"tensor '{tensor}': storage '{s.Key}' ends early");
                        left -= n;
                    }
                }
                ReadExactly(stream, dest, tensor);
            }
        }
        catch (Exception e) when (e is InvalidDataException or IOException and not PickleFormatException)
        {
            throw Bad($"tensor '{tensor}': storage '{s.Key}' is unreadable ({e.Message.Split('\n')[0]})");
        }
    }

    private void ReadExactly(Stream stream, Span<byte> dest, string tensor)
    {
        int done = 0;
        while (done < dest.Length)
        {
            int n = stream.Read(dest.Slice(done, Math.Min(4 << 20, dest.Length - done)));
            if (n <= 0) throw Bad($"tensor '{tensor}': unexpected end of storage data (truncated file?)");
            done += n;
        }
    }

    public void Dispose()
    {
        _zip?.Dispose();
        _file.Dispose();
    }
}
