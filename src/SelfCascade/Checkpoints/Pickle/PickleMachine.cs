using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace SelfCascade.Checkpoints.Pickle;

/// <summary>Bounds on what one pickle may make the unpickler hold (hostile files must not exhaust memory).</summary>
public sealed record PickleLimits
{
    public int MaxStackItems { get; init; } = 1_000_000;
    public int MaxMarks { get; init; } = 100_000;
    public int MaxMemoEntries { get; init; } = 4_000_000;
    /// <summary>Longest string or bytes object (also never more than the bytes left in the stream).</summary>
    public long MaxObjectBytes { get; init; } = 256L << 20;
    /// <summary>Widest arbitrary-precision integer (LONG1/LONG4), in bytes.</summary>
    public int MaxLongBytes { get; init; } = 1024;
    public int MaxTensorRank { get; init; } = 64;
}

/// <summary>
/// Our own pickle virtual machine for the opcodes torch.save emits (protocols 2 to 5). It has no way to call
/// anything but the C# stand-ins of <see cref="PickleAllowList"/>: a GLOBAL (or STACK_GLOBAL, INST, extension
/// code) naming anything else throws <see cref="UnsafePickleException"/> as soon as it is read. Every length is
/// checked against the bytes left in the stream and the <see cref="PickleLimits"/> before anything is allocated.
/// Every opcode consumes input, so a pickle of n bytes runs at most n steps.
/// </summary>
public sealed class PickleMachine
{
    private readonly Stream _input;
    private readonly string _path;
    private readonly PickleLimits _limits;
    private readonly Func<object?, object?> _persistentLoad;
    private readonly List<object?> _stack = new();
    private readonly List<int> _marks = new();
    private readonly Dictionary<long, object?> _memo = new();
    private readonly long _end;

    /// <param name="input">A readable, seekable stream positioned at the pickle's first byte; left after its STOP.</param>
    /// <param name="path">The file, for error messages.</param>
    /// <param name="persistentLoad">Resolves BINPERSID ids (torch storages); throw to refuse.</param>
    public PickleMachine(Stream input, string path, Func<object?, object?> persistentLoad, PickleLimits? limits = null)
    {
        _input = input; _path = path; _persistentLoad = persistentLoad; _limits = limits ?? new PickleLimits();
        _end = input.Length;
    }

    /// <summary>Runs one pickle to its STOP and returns the object it built.</summary>
    public static object? Load(Stream input, string path, Func<object?, object?> persistentLoad, PickleLimits? limits = null) =>
        new PickleMachine(input, path, persistentLoad, limits).Run();

    private PickleFormatException Bad(string problem) =>
        new(_path, $"malformed pickle at byte {_input.Position}: {problem}");

    public object? Run()
    {
        while (true)
        {
            int op = _input.ReadByte();
            if (op < 0) throw Bad("ends before its STOP opcode (truncated file)");
            switch (op)
            {
                case 0x80: ReadByteOrFail(); break;                                  // PROTO
                case 0x95: ReadFixed(8); break;                                      // FRAME (framing is only a hint)
                case '.':                                                            // STOP
                    if (_stack.Count != 1 || _marks.Count != 0) throw Bad($"STOP with {_stack.Count} items on the stack");
                    return _stack[0];
                case '(': PushMark(); break;                                         // MARK
                case ')': Push(new PyTuple([])); break;                              // EMPTY_TUPLE
                case ']': Push(new PyList(new())); break;                            // EMPTY_LIST
                case '}': Push(new PyDict()); break;                                 // EMPTY_DICT
                case 0x8f: Push(new PySet(new())); break;                            // EMPTY_SET
                case 'N': Push(null); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case 'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(ReadFixed(4))); break;   // BININT
                case 'K': Push((long)ReadByteOrFail()); break;                                       // BININT1
                case 'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(ReadFixed(2))); break;  // BININT2
                case 0x8a: Push(ReadLong(ReadByteOrFail())); break;                                  // LONG1
                case 0x8b: Push(ReadLong(ReadLength(4))); break;                                     // LONG4
                case 'G': Push(BinaryPrimitives.ReadDoubleBigEndian(ReadFixed(8))); break;           // BINFLOAT
                case 'X': Push(Utf8(ReadLength(4))); break;                                          // BINUNICODE
                case 0x8c: Push(Utf8(ReadByteOrFail())); break;                                      // SHORT_BINUNICODE
                case 0x8d: Push(Utf8(ReadLength(8))); break;                                         // BINUNICODE8
                case 'T': Push(Latin1(ReadLength(4))); break;                                        // BINSTRING (py2 str)
                case 'U': Push(Latin1(ReadByteOrFail())); break;                                     // SHORT_BINSTRING
                case 'B': Push(ReadBytes(ReadLength(4))); break;                                     // BINBYTES
                case 'C': Push(ReadBytes(ReadByteOrFail())); break;                                  // SHORT_BINBYTES
                case 0x8e: Push(ReadBytes(ReadLength(8))); break;                                    // BINBYTES8
                case 0x96: Push(ReadBytes(ReadLength(8))); break;                                    // BYTEARRAY8
                case 't': Push(new PyTuple(PopToMark().ToArray())); break;                           // TUPLE
                case 0x85: Push(new PyTuple([Pop()])); break;                                        // TUPLE1
                case 0x86: { var b = Pop(); var a = Pop(); Push(new PyTuple([a, b])); break; }       // TUPLE2
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new PyTuple([a, b, c])); break; }
                case 'l': Push(new PyList(PopToMark())); break;                                      // LIST
                case 'd': { var items = PopToMark(); var d = new PyDict(); SetItems(d, items); Push(d); break; } // DICT
                case 'a': { var v = Pop(); AsList(Peek()).Add(v); break; }                           // APPEND
                case 'e': { var items = PopToMark(); AsList(Peek()).AddRange(items); break; }        // APPENDS
                case 's': { var v = Pop(); var k = Pop(); SetItem(Peek(), k, v); break; }            // SETITEM
                case 'u': { var items = PopToMark(); var t = Peek(); if (t is not PyDict d) throw Bad($"SETITEMS on {Describe(t)}"); SetItems(d, items); break; }
                case 0x90: { var items = PopToMark(); if (Peek() is not PySet s) throw Bad("ADDITEMS on a non-set"); s.Items.AddRange(items); break; }
                case 0x91: Push(new PySet(PopToMark())); break;                                      // FROZENSET
                case 'q': MemoPut(ReadByteOrFail()); break;                                          // BINPUT
                case 'r': MemoPut(BinaryPrimitives.ReadUInt32LittleEndian(ReadFixed(4))); break;     // LONG_BINPUT
                case 0x94: MemoPut(_memo.Count); break;                                              // MEMOIZE
                case 'p': MemoPut(ReadDecimalLine()); break;                                         // PUT
                case 'h': MemoGet(ReadByteOrFail()); break;                                          // BINGET
                case 'j': MemoGet(BinaryPrimitives.ReadUInt32LittleEndian(ReadFixed(4))); break;     // LONG_BINGET
                case 'g': MemoGet(ReadDecimalLine()); break;                                         // GET
                case '2': Push(Peek()); break;                                                       // DUP
                case '0': if (_marks.Count > 0 && _marks[^1] == _stack.Count) _marks.RemoveAt(_marks.Count - 1); else Pop(); break; // POP
                case '1': PopToMark(); break;                                                        // POP_MARK
                case 'c':                                                                            // GLOBAL
                {
                    var module = ReadLine(); var name = ReadLine();
                    Push(ResolveGlobal(module, name));
                    break;
                }
                case 0x93:                                                                           // STACK_GLOBAL
                {
                    var name = Pop(); var module = Pop();
                    if (module is not string m || name is not string n) throw Bad("STACK_GLOBAL needs two strings");
                    Push(ResolveGlobal(m, n));
                    break;
                }
                case 'i':                                                                            // INST: a call by name
                {
                    var module = ReadLine(); var name = ReadLine();
                    var g = ResolveGlobal(module, name);
                    Push(Call(g, new PyTuple(PopToMark().ToArray())));
                    break;
                }
                case 'o':                                                                            // OBJ
                {
                    var items = PopToMark();
                    if (items.Count == 0 || items[0] is not PyGlobal g) throw Bad("OBJ without a class");
                    Push(Call(g, new PyTuple(items.Skip(1).ToArray())));
                    break;
                }
                case 0x82: case 0x83: case 0x84:                                                     // EXT1/2/4
                    throw new UnsafePickleException(_path, "copyreg extension code (EXT opcode)");
                case 'R':                                                                            // REDUCE
                {
                    var args = Pop(); var fn = Pop();
                    if (fn is not PyGlobal g) throw Bad($"REDUCE calls {Describe(fn)}, not an allowed global");
                    if (args is not PyTuple t) throw Bad($"REDUCE arguments are {Describe(args)}, not a tuple");
                    Push(Call(g, t));
                    break;
                }
                case 0x81:                                                                           // NEWOBJ
                {
                    var args = Pop(); var cls = Pop();
                    if (cls is not PyGlobal g || args is not PyTuple t) throw Bad("NEWOBJ needs an allowed class and a tuple");
                    Push(Call(g, t));
                    break;
                }
                case 0x92:                                                                           // NEWOBJ_EX
                {
                    var kwargs = Pop(); var args = Pop(); var cls = Pop();
                    if (cls is not PyGlobal g || args is not PyTuple t || kwargs is not PyDict { Count: 0 })
                        throw Bad("NEWOBJ_EX needs an allowed class, a tuple and no keyword arguments");
                    Push(Call(g, t));
                    break;
                }
                case 'b': Build(Pop(), Peek()); break;                                               // BUILD
                case 'Q': Push(_persistentLoad(Pop())); break;                                       // BINPERSID
                case 'P': throw Bad("text persistent ids (PERSID) are not used by torch.save");
                default:
                    throw Bad($"unsupported opcode 0x{op:x2}");
            }
        }
    }

    private PyGlobal ResolveGlobal(string module, string name)
    {
        // Refused by name before anything else happens: nothing is imported or called, ever.
        return PickleAllowList.Resolve(module, name) ?? throw new UnsafePickleException(_path, $"{module}.{name}");
    }

    private object? Call(PyGlobal g, PyTuple args)
    {
        switch (g.Kind)
        {
            case AllowedGlobal.RebuildTensorV2:
                if (args.Count < 6 || args.Count > 7) throw Bad($"{g.FullName} takes 6 or 7 arguments, got {args.Count}");
                return RebuildTensor(g, args);
            case AllowedGlobal.RebuildTensor:
                if (args.Count != 4) throw Bad($"{g.FullName} takes 4 arguments, got {args.Count}");
                return RebuildTensor(g, args);
            case AllowedGlobal.RebuildParameter:
            case AllowedGlobal.RebuildParameterWithState:
                if (args.Count < 3 || args[0] is not TensorRef data) throw Bad($"{g.FullName} needs a tensor as its first argument");
                return data;
            case AllowedGlobal.OrderedDict:
            {
                var d = new PyDict { Ordered = true };
                if (args.Count == 0) return d;
                // OrderedDict(iterable): a list or tuple of pairs, or a dict (some writers, e.g. PyBridge, pass a tuple).
                if (args.Count == 1 && args[0] is PyDict src)
                {
                    foreach (var (k, v) in src.Items) d.Set(k, v);
                    return d;
                }
                var pairs = args.Count != 1 ? null : args[0] switch { PyList pl => pl.Items, PyTuple pt => (IList<object?>)pt.Items, _ => null };
                if (pairs is null) throw Bad("OrderedDict takes nothing, a dict, or a list or tuple of pairs");
                foreach (var p in pairs)
                {
                    var kv = p switch { PyTuple { Count: 2 } t2 => t2.Items, PyList { Items.Count: 2 } l2 => l2.Items.ToArray(), _ => null };
                    if (kv is null) throw Bad("OrderedDict pair is not a 2-tuple");
                    d.Set(CheckKey(kv[0]), kv[1]);
                }
                return d;
            }
            case AllowedGlobal.TorchSize:
                if (args.Count == 0) return new PyTuple([]);
                if (args.Count != 1 || args[0] is not PyTuple size) throw Bad("torch.Size takes one tuple");
                return size;
            case AllowedGlobal.CodecsEncode:
            {
                if (args.Count != 2 || args[0] is not string text || args[1] is not string enc || (enc != "latin1" && enc != "latin-1"))
                    throw Bad("_codecs.encode is only accepted as encode(text, 'latin1')");
                var bytes = new byte[text.Length];
                for (int i = 0; i < text.Length; i++)
                {
                    if (text[i] > 0xff) throw Bad("_codecs.encode: character outside latin1");
                    bytes[i] = (byte)text[i];
                }
                return bytes;
            }
            case AllowedGlobal.NumpyScalar:
                return NumpyScalar(args);
            case AllowedGlobal.NumpyDType:
            case AllowedGlobal.InertClass:
                return new InertObject(g.FullName, args);
            case AllowedGlobal.BuiltinSet:
            case AllowedGlobal.BuiltinFrozenSet:
                if (args.Count == 0) return new PySet(new());
                if (args.Count == 1 && args[0] is PyList l) return new PySet(new(l.Items));
                if (args.Count == 1 && args[0] is PyTuple tu) return new PySet(new(tu.Items));
                throw Bad($"{g.FullName} takes nothing or one list");
            default:
                throw Bad($"{g.FullName} cannot be called");
        }
    }

    private TensorRef RebuildTensor(PyGlobal g, PyTuple args)
    {
        if (args[0] is not StorageRef storage) throw Bad($"{g.FullName}: first argument is {Describe(args[0])}, not a storage");
        if (!PyInt.TryToLong(args[1], out long offset) || offset < 0) throw Bad($"{g.FullName}: invalid storage offset");
        var size = Ints(args[2], g.FullName, "size");
        var stride = Ints(args[3], g.FullName, "stride");
        if (size.Length != stride.Length) throw Bad($"{g.FullName}: size has {size.Length} dimensions, stride {stride.Length}");
        if (size.Length > _limits.MaxTensorRank) throw Bad($"{g.FullName}: {size.Length} dimensions exceed {_limits.MaxTensorRank}");
        try
        {
            long numel = 1, extent = 0;
            foreach (var s in size) numel = checked(numel * s);
            for (int i = 0; i < size.Length; i++) if (size[i] > 0) extent = checked(extent + (size[i] - 1) * stride[i]);
            if (numel > 0 && checked(offset + extent + 1) > storage.ElementCount)
                throw Bad($"{g.FullName}: a [{string.Join(",", size)}] view with strides [{string.Join(",", stride)}] at offset {offset} reaches past its storage of {storage.ElementCount} elements");
        }
        catch (OverflowException) { throw Bad($"{g.FullName}: size [{string.Join(",", size)}] overflows"); }
        return new TensorRef(storage, offset, size, stride);
    }

    private long[] Ints(object? v, string fn, string what)
    {
        if (v is not PyTuple t) throw Bad($"{fn}: {what} is {Describe(v)}, not a tuple");
        var r = new long[t.Count];
        for (int i = 0; i < t.Count; i++)
            if (!PyInt.TryToLong(t[i], out r[i]) || r[i] < 0) throw Bad($"{fn}: {what} holds {Describe(t[i])}, not a non-negative int");
        return r;
    }

    private object? NumpyScalar(PyTuple args)
    {
        // numpy.core.multiarray.scalar(dtype, raw bytes): decoded for the common little-endian ints and floats.
        if (args.Count != 2 || args[0] is not InertObject { Args: PyTuple dt } || args[1] is not byte[] raw || dt.Count == 0 || dt[0] is not string code)
            throw Bad("numpy scalar needs a dtype and its bytes");
        return (code, raw.Length) switch
        {
            ("i8", 8) => BinaryPrimitives.ReadInt64LittleEndian(raw),
            ("i4", 4) => (long)BinaryPrimitives.ReadInt32LittleEndian(raw),
            ("u8", 8) => (long)BinaryPrimitives.ReadUInt64LittleEndian(raw),
            ("f8", 8) => BinaryPrimitives.ReadDoubleLittleEndian(raw),
            ("f4", 4) => (double)BinaryPrimitives.ReadSingleLittleEndian(raw),
            ("b1", 1) => raw[0] != 0,
            _ => new InertObject("numpy scalar " + code, raw),
        };
    }

    private void Build(object? state, object? target)
    {
        switch (target)
        {
            case InertObject o: o.State = state; break;
            case TensorRef: break;                       // tensor state (requires_grad etc.) does not change the data
            case PyDict when state is null || state is PyDict { Count: 0 }: break;
            default: throw Bad($"BUILD on {Describe(target)}");
        }
    }

    private void SetItem(object? target, object? key, object? value)
    {
        if (target is not PyDict d) throw Bad($"SETITEM on {Describe(target)}");
        d.Set(CheckKey(key), value);
    }

    private void SetItems(PyDict d, List<object?> items)
    {
        if (items.Count % 2 != 0) throw Bad("odd number of items for a dict");
        for (int i = 0; i < items.Count; i += 2) d.Set(CheckKey(items[i]), items[i + 1]);
    }

    private object? CheckKey(object? key) =>
        key is PyList or PyDict or PySet ? throw Bad($"unhashable dict key {Describe(key)}") : key;

    private List<object?> AsList(object? v) => v is PyList l ? l.Items : throw Bad($"APPEND on {Describe(v)}");

    private void Push(object? v)
    {
        if (_stack.Count >= _limits.MaxStackItems) throw Bad($"stack exceeds {_limits.MaxStackItems} items");
        _stack.Add(v);
    }

    private object? Pop()
    {
        if (_stack.Count == 0 || (_marks.Count > 0 && _marks[^1] == _stack.Count)) throw Bad("stack underflow");
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    private object? Peek()
    {
        if (_stack.Count == 0 || (_marks.Count > 0 && _marks[^1] == _stack.Count)) throw Bad("stack underflow");
        return _stack[^1];
    }

    private void PushMark()
    {
        if (_marks.Count >= _limits.MaxMarks) throw Bad($"more than {_limits.MaxMarks} nested marks");
        _marks.Add(_stack.Count);
    }

    private List<object?> PopToMark()
    {
        if (_marks.Count == 0) throw Bad("no MARK to pop to");
        int m = _marks[^1];
        _marks.RemoveAt(_marks.Count - 1);
        var items = _stack.GetRange(m, _stack.Count - m);
        _stack.RemoveRange(m, _stack.Count - m);
        return items;
    }

    private void MemoPut(long index)
    {
        if (!_memo.ContainsKey(index) && _memo.Count >= _limits.MaxMemoEntries) throw Bad($"memo exceeds {_limits.MaxMemoEntries} entries");
        _memo[index] = Peek();
    }

    private void MemoGet(long index)
    {
        if (!_memo.TryGetValue(index, out var v)) throw Bad($"memo index {index} was never stored");
        Push(v);
    }

    private int ReadByteOrFail()
    {
        int b = _input.ReadByte();
        return b < 0 ? throw Bad("unexpected end of data") : b;
    }

    private byte[] ReadFixed(int n)
    {
        var buf = new byte[n];
        if (_input.ReadAtLeast(buf, n, throwOnEndOfStream: false) != n) throw Bad("unexpected end of data");
        return buf;
    }

    private long ReadLength(int width)
    {
        var b = ReadFixed(width);
        long n = width == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(b) : BinaryPrimitives.ReadInt64LittleEndian(b);
        if (n < 0) throw Bad($"negative length {n}");
        return n;
    }

    private byte[] ReadBytes(long n)
    {
        long left = _end - _input.Position;
        if (n > left) throw Bad($"declares {n} bytes but only {left} remain");
        if (n > _limits.MaxObjectBytes) throw Bad($"a {n}-byte object exceeds the limit of {_limits.MaxObjectBytes}");
        return ReadFixed((int)n);
    }

    private string Utf8(long n)
    {
        try { return new UTF8Encoding(false, true).GetString(ReadBytes(n)); }
        catch (DecoderFallbackException) { throw Bad("string is not valid UTF-8"); }
    }

    private string Latin1(long n) => Encoding.Latin1.GetString(ReadBytes(n));

    private object ReadLong(long n)
    {
        if (n > _limits.MaxLongBytes) throw Bad($"a {n}-byte integer exceeds the limit of {_limits.MaxLongBytes}");
        var b = ReadBytes(n);
        var v = new BigInteger(b, isUnsigned: false, isBigEndian: false);
        return v >= long.MinValue && v <= long.MaxValue ? (long)v : v;
    }

    private string ReadLine()
    {
        var sb = new StringBuilder();
        while (true)
        {
            int b = ReadByteOrFail();
            if (b == '\n') return sb.ToString();
            if (sb.Length >= 1024) throw Bad("text line longer than 1024 bytes");
            sb.Append((char)b);
        }
    }

    private long ReadDecimalLine()
    {
        var s = ReadLine();
        return long.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v)
            ? v : throw Bad($"'{s}' is not a memo index");
    }

    internal static string Describe(object? v) => v switch
    {
        null => "None",
        string => "a str",
        long or BigInteger => "an int",
        double => "a float",
        bool => "a bool",
        byte[] => "bytes",
        PyTuple => "a tuple",
        PyList => "a list",
        PyDict => "a dict",
        PyGlobal g => g.FullName,
        TensorRef => "a tensor",
        StorageRef => "a storage",
        InertObject o => o.ClassName,
        _ => v.GetType().Name,
    };
}
