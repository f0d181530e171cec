namespace SelfCascade.Checkpoints.Pickle;

/// <summary>
/// The globals a checkpoint pickle may name (module.name), each mapped to a C# implementation. Everything else,
/// including <c>torch.storage._load_from_bytes</c> (it unpickles nested data with the unsafe unpickler),
/// <c>torch._tensor._rebuild_from_type_v2</c> (tensor subclasses), numpy arrays, and of course os/subprocess/builtins,
/// is refused by name when the GLOBAL opcode is read.
/// </summary>
public static class PickleAllowList
{
    /// <summary>torch storage classes and their safetensors dtype names.</summary>
    public static readonly IReadOnlyDictionary<string, string> StorageDTypes = new Dictionary<string, string>
    {
        ["FloatStorage"] = "F32", ["HalfStorage"] = "F16", ["BFloat16Storage"] = "BF16", ["DoubleStorage"] = "F64",
        ["LongStorage"] = "I64", ["IntStorage"] = "I32", ["ShortStorage"] = "I16", ["CharStorage"] = "I8",
        ["ByteStorage"] = "U8", ["BoolStorage"] = "BOOL",
    };

    private static readonly Dictionary<string, AllowedGlobal> Functions = new(StringComparer.Ordinal)
    {
        ["torch._utils._rebuild_tensor_v2"] = AllowedGlobal.RebuildTensorV2,
        ["torch._utils._rebuild_tensor"] = AllowedGlobal.RebuildTensor,
        ["torch._utils._rebuild_parameter"] = AllowedGlobal.RebuildParameter,
        ["torch._utils._rebuild_parameter_with_state"] = AllowedGlobal.RebuildParameterWithState,
        ["collections.OrderedDict"] = AllowedGlobal.OrderedDict,
        ["torch.Size"] = AllowedGlobal.TorchSize,
        // Protocol-2 pickles spell Python 3 bytes as _codecs.encode(text, 'latin1'); only latin1 is implemented.
        ["_codecs.encode"] = AllowedGlobal.CodecsEncode,
        // Data-only classes seen in Lightning checkpoints (global_step as a numpy scalar, callback state).
        ["numpy.core.multiarray.scalar"] = AllowedGlobal.NumpyScalar,
        ["numpy._core.multiarray.scalar"] = AllowedGlobal.NumpyScalar,
        ["numpy.dtype"] = AllowedGlobal.NumpyDType,
        ["builtins.set"] = AllowedGlobal.BuiltinSet,
        ["__builtin__.set"] = AllowedGlobal.BuiltinSet,
        ["builtins.frozenset"] = AllowedGlobal.BuiltinFrozenSet,
        ["pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint"] = AllowedGlobal.InertClass,
    };

    /// <summary>The C# stand-in for an allowed global, or null when the global is refused.</summary>
    public static PyGlobal? Resolve(string module, string name)
    {
        if (module == "torch" && StorageDTypes.TryGetValue(name, out var dtype))
            return new PyGlobal(AllowedGlobal.StorageType, module, name, dtype);
        return Functions.TryGetValue($"{module}.{name}", out var kind) ? new PyGlobal(kind, module, name) : null;
    }

    /// <summary>Every allowed module.name (for documentation and the inspect command).</summary>
    public static IEnumerable<string> Names =>
        Functions.Keys.Concat(StorageDTypes.Keys.Select(s => "torch." + s)).OrderBy(s => s, StringComparer.Ordinal);
}
