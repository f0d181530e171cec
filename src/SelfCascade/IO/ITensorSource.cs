using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.IO;

/// <summary>
/// A file of named tensors read one tensor at a time: a safetensors file, or a checkpoint pickle read through the
/// allow-list unpickler. Everything that loads weights (folders, single files, LoRA) reads through this surface, so
/// no loader needs to know the container format.
/// </summary>
public interface ITensorSource : IDisposable
{
    /// <summary>The file the tensors come from (for error messages).</summary>
    string Path { get; }

    /// <summary>Every tensor's name, dtype (safetensors spelling: F32, F16, BF16, …) and shape, without reading data.</summary>
    IReadOnlyDictionary<string, SafeTensorEntry> Entries { get; }

    /// <summary>Reads a tensor into a new CPU tensor of the file's dtype (or converted to <paramref name="dtype"/>).</summary>
    Tensor Read(string name, ScalarType? dtype = null);

    /// <summary>Streams a tensor into an existing tensor of the same shape (any device, any float dtype).</summary>
    void ReadInto(string name, Tensor destination);
}
