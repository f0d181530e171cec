namespace SelfCascade.Checkpoints.Pickle;

/// <summary>A checkpoint pickle that is malformed, truncated or exceeds a limit: one line naming the file.</summary>
public class PickleFormatException(string path, string problem) : IOException($"{path}: {problem}")
{
    public string FilePath { get; } = path;
    public string Problem { get; } = problem;
}

/// <summary>
/// A pickle that names a global outside the allow-list (e.g. <c>os.system</c>). Raised when the GLOBAL opcode is
/// read, before anything could be called: nothing in the file runs.
/// </summary>
public sealed class UnsafePickleException(string path, string global)
    : PickleFormatException(path, $"refused to load: the pickle references '{global}', which is not on the allow-list of tensor-rebuild functions, storages and plain containers (a pickle can run arbitrary code; convert the file to safetensors with a trusted tool, or use it as is only if you trust it)")
{
    /// <summary>The refused global as module.name.</summary>
    public string Global { get; } = global;
}
