using System.Numerics;

namespace SelfCascade.Checkpoints.Pickle;

// The values the allow-list unpickler builds. Python objects map to: None → null, bool, long (or BigInteger for
// wider ints), double, string, byte[], PyList, PyTuple, PyDict, PySet, and the records below for the allow-listed
// globals. Nothing here can run code: the only "callables" are AllowedGlobal values, implemented in C#.

/// <summary>A Python list (mutable: APPEND/APPENDS add to it).</summary>
public sealed class PyList(List<object?> items)
{
    public List<object?> Items { get; } = items;
}

/// <summary>A Python tuple: immutable, compared by value (tuples may be dict keys).</summary>
public sealed class PyTuple(object?[] items) : IEquatable<PyTuple>
{
    public object?[] Items { get; } = items;
    public int Count => Items.Length;
    public object? this[int i] => Items[i];

    public bool Equals(PyTuple? other) => other != null && Items.Length == other.Items.Length &&
        Items.Zip(other.Items).All(p => Equals(p.First, p.Second));
    public override bool Equals(object? obj) => obj is PyTuple t && Equals(t);
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var x in Items) h.Add(x is PyList or PyDict ? 0 : x?.GetHashCode() ?? 0);
        return h.ToHashCode();
    }
}

/// <summary>A Python dict or collections.OrderedDict: insertion-ordered, keys compared by value.</summary>
public sealed class PyDict
{
    private readonly Dictionary<object, object?> _map = new();
    private readonly List<object> _order = new();
    private static readonly object NoneKey = new();

    public bool Ordered { get; init; }
    public int Count => _order.Count;

    public void Set(object? key, object? value)
    {
        if (key is PyList or PyDict or PySet) throw new InvalidDataException("unhashable dict key");
        var k = key ?? NoneKey;
        if (!_map.ContainsKey(k)) _order.Add(k);
        _map[k] = value;
    }

    public bool TryGet(object? key, out object? value) => _map.TryGetValue(key ?? NoneKey, out value);

    public IEnumerable<KeyValuePair<object?, object?>> Items =>
        _order.Select(k => new KeyValuePair<object?, object?>(ReferenceEquals(k, NoneKey) ? null : k, _map[k]));
}

/// <summary>A Python set or frozenset (kept as a list: only its size ever matters here).</summary>
public sealed class PySet(List<object?> items)
{
    public List<object?> Items { get; } = items;
}

/// <summary>The globals the unpickler accepts. Each is implemented in C#; none runs anything from the file.</summary>
public enum AllowedGlobal
{
    RebuildTensorV2, RebuildTensor, RebuildParameter, RebuildParameterWithState,
    StorageType, OrderedDict, TorchSize, CodecsEncode, NumpyScalar, NumpyDType, BuiltinSet, BuiltinFrozenSet,
    InertClass,
}

/// <summary>An allow-listed global on the stack: what REDUCE may call.</summary>
public sealed record PyGlobal(AllowedGlobal Kind, string Module, string Name, string? StorageDType = null)
{
    public string FullName => $"{Module}.{Name}";
}

/// <summary>A storage named by a persistent id: its key in the archive, element dtype, element count.</summary>
public sealed record StorageRef(string Key, string DType, long ElementCount, long ElementOffset = 0);

/// <summary>What torch._utils._rebuild_tensor_v2 would build: a view of a storage (nothing is read yet).</summary>
public sealed record TensorRef(StorageRef Storage, long Offset, long[] Shape, long[] Stride);

/// <summary>
/// An instance of an inert data class (numpy dtype, Lightning's ModelCheckpoint callback state): its constructor
/// arguments and BUILD state are kept as data; no method of it exists.
/// </summary>
public sealed class InertObject(string className, object? args)
{
    public string ClassName { get; } = className;
    public object? Args { get; } = args;
    public object? State { get; set; }
}

internal static class PyInt
{
    /// <summary>Python int → long when it fits.</summary>
    public static bool TryToLong(object? v, out long value)
    {
        switch (v)
        {
            case long l: value = l; return true;
            case bool b: value = b ? 1 : 0; return true;
            case BigInteger bi when bi >= long.MinValue && bi <= long.MaxValue: value = (long)bi; return true;
            default: value = 0; return false;
        }
    }
}
