using SelfCascade.Checkpoints.SingleFile.KeyMaps;
using SelfCascade.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Checkpoints.SingleFile;

/// <summary>
/// One component's place in a single-file checkpoint: its key prefix (<c>model.diffusion_model.</c>, ...) and, for
/// every tensor of the diffusers network (names and shapes from the network built on the meta device), the original
/// key and transform. <see cref="Bind"/> gives the component's view of the file as an <see cref="ITensorSource"/>
/// with diffusers names, so the ordinary weight loader streams it, tensor by tensor, into the network.
/// </summary>
public sealed class ComponentKeyMap
{
    public string Component { get; }
    public string Prefix { get; }
    public IOriginalKeyRule Rule { get; }
    /// <summary>Every diffusers tensor with its original key (prefix included) and its diffusers shape.</summary>
    public IReadOnlyList<(KeyMapping Mapping, long[] Shape)> Tensors { get; }
    /// <summary>Diffusers names the rule has no original key for (a bug or an unsupported network shape).</summary>
    public IReadOnlyList<string> Unmapped { get; }

    public ComponentKeyMap(string component, string prefix, IOriginalKeyRule rule, IEnumerable<(string Name, long[] Shape)> diffusersTensors)
    {
        Component = component; Prefix = prefix; Rule = rule;
        var tensors = new List<(KeyMapping, long[])>();
        var unmapped = new List<string>();
        foreach (var (name, shape) in diffusersTensors)
        {
            var m = rule.Map(name);
            if (m is null) unmapped.Add(name);
            else tensors.Add((m with { Source = prefix + m.Source }, shape));
        }
        Tensors = tensors; Unmapped = unmapped;
    }

    /// <summary>Whether an original key belongs to this component (its prefix).</summary>
    public bool Owns(string originalKey) => originalKey.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>A key of this component that real files hold and the diffusers network has no place for.</summary>
    public bool IsIgnorable(string originalKey) => Owns(originalKey) && Rule.IsIgnorable(originalKey[Prefix.Length..]);

    /// <summary>The component's tensors in <paramref name="file"/>, by diffusers name (the file stays owned by the caller).</summary>
    public MappedTensorSource Bind(ITensorSource file) => new(this, file);

    /// <summary>The original keys this map reads (for writing a single file and for "unexpected key" checks).</summary>
    public IEnumerable<string> SourceKeys => Tensors.Select(t => t.Mapping.Source).Distinct(StringComparer.Ordinal);
}

/// <summary>
/// A component of a single-file checkpoint seen with diffusers names: entries carry the diffusers shape when the
/// file's tensor converts to it (else the shape it would convert to, so the loader reports the mismatch); keys under
/// the component's prefix that nothing maps to appear under their original names, so the loader lists them as
/// unexpected. Reads convert on the way: a 1x1 conv to a linear, OpenCLIP's fused q/k/v slices, a transpose.
/// </summary>
public sealed class MappedTensorSource : ITensorSource
{
    private readonly ComponentKeyMap _map;
    private readonly ITensorSource _file;
    private readonly Dictionary<string, KeyMapping> _byTarget = new(StringComparer.Ordinal);

    public string Path { get; }
    public IReadOnlyDictionary<string, SafeTensorEntry> Entries { get; }

    internal MappedTensorSource(ComponentKeyMap map, ITensorSource file)
    {
        _map = map; _file = file;
        Path = $"{file.Path} [{map.Component}]";
        var entries = new Dictionary<string, SafeTensorEntry>(StringComparer.Ordinal);
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (m, shape) in map.Tensors)
        {
            if (!file.Entries.TryGetValue(m.Source, out var e)) continue;
            used.Add(m.Source);
            var converted = ConvertedShape(m, e.Shape, shape);
            long bytes = converted.Aggregate(1L, (a, b) => a * b) * (SafeTensorsDTypes.IsKnown(e.DType) ? SafeTensorsDTypes.SizeOf(e.DType) : 1);
            entries[m.Target] = new SafeTensorEntry(m.Target, e.DType, converted, 0, bytes);
            _byTarget[m.Target] = m;
        }
        foreach (var (key, e) in file.Entries)
            if (map.Owns(key) && !used.Contains(key) && !map.IsIgnorable(key)) entries[key] = e;
        Entries = entries;
    }

    /// <summary>The diffusers shape a file tensor of shape <paramref name="src"/> becomes (or its own shape when it cannot).</summary>
    private static long[] ConvertedShape(KeyMapping m, long[] src, long[] target)
    {
        long Count(long[] s) => s.Aggregate(1L, (a, b) => a * b);
        switch (m.Transform)
        {
            case TensorTransform.Reshape:
                return Count(src) == Count(target) && src.Where(d => d != 1).SequenceEqual(target.Where(d => d != 1)) ? target : src;
            case TensorTransform.Transpose:
                return src.Length == 2 ? [src[1], src[0]] : src;
            case TensorTransform.FusedPart:
                if (src.Length == 0 || src[0] % m.Parts != 0) return src;
                var s = (long[])src.Clone();
                s[0] /= m.Parts;
                return s;
            default:
                return src;
        }
    }

    public Tensor Read(string name, ScalarType? dtype = null)
    {
        if (!_byTarget.TryGetValue(name, out var m))
        {
            if (Entries.ContainsKey(name)) return _file.Read(name, dtype);
            throw new KeyNotFoundException($"{Path}: no tensor named '{name}'");
        }
        var shape = Entries[name].Shape;
        using var src = _file.Read(m.Source, dtype);
        switch (m.Transform)
        {
            case TensorTransform.Reshape:
                return src.reshape(shape).contiguous().clone();
            case TensorTransform.Transpose:
                return src.t().contiguous();
            case TensorTransform.FusedPart:
                long part = src.shape[0] / m.Parts;
                using (var slice = src.narrow(0, m.Part * part, part)) return slice.contiguous().clone();
            default:
                return src.alias();
        }
    }

    public void ReadInto(string name, Tensor destination)
    {
        if (_byTarget.TryGetValue(name, out var m) && m.Transform == TensorTransform.Identity)
        {
            _file.ReadInto(m.Source, destination); // straight from the file into the parameter
            return;
        }
        using var _ = torch.no_grad();
        using var t = Read(name);
        if (!destination.shape.SequenceEqual(t.shape))
            throw new ArgumentException($"{Path}: tensor '{name}' has shape [{string.Join(",", t.shape)}], destination [{string.Join(",", destination.shape)}]");
        destination.copy_(t);
    }

    /// <summary>The file is owned by the checkpoint that made this view.</summary>
    public void Dispose() { }
}
