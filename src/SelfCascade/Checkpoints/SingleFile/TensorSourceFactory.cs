using SelfCascade.Checkpoints.Pickle;
using SelfCascade.IO;

namespace SelfCascade.Checkpoints.SingleFile;

/// <summary>
/// The one place a single checkpoint file is opened as an <see cref="ITensorSource"/>, by extension: safetensors,
/// or a .ckpt/.pt/.pth/.bin pickle through the allow-list reader (<see cref="PickleCheckpoint"/>).
/// </summary>
public static class TensorSourceFactory
{
    public static readonly string[] SafeTensorsExtensions = [".safetensors"];
    public static readonly string[] PickleExtensions = [".ckpt", ".pt", ".pth", ".bin"];

    /// <summary>Whether <paramref name="path"/> has an extension a single-file checkpoint may have.</summary>
    public static bool IsCheckpointFile(string path) =>
        SafeTensorsExtensions.Concat(PickleExtensions).Contains(Path.GetExtension(path).ToLowerInvariant());

    public static ITensorSource Open(string path)
    {
        var ext = Path.GetExtension(path).ToLowerInvariant();
        if (SafeTensorsExtensions.Contains(ext)) return SafeTensorsFile.Open(path);
        // Pickles go through our own allow-list unpickler: nothing in the file is ever executed.
        if (PickleExtensions.Contains(ext)) return PickleCheckpoint.Open(path);
        throw new NotSupportedException($"{path}: unknown checkpoint extension '{ext}' (expected .safetensors, .ckpt, .pt or .pth)");
    }
}
