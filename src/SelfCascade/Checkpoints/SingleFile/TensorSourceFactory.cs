using SelfCascade.IO;

namespace SelfCascade.Checkpoints.SingleFile;

/// <summary>
/// The one place a single checkpoint file is opened as an <see cref="ITensorSource"/>, by extension: safetensors
/// today; the allow-list pickle reader plugs in here for .ckpt/.pt/.pth/.bin.
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
        if (PickleExtensions.Contains(ext))
            throw new NotSupportedException($"{path}: PyTorch pickle checkpoints ({ext}) are not supported yet; convert it to .safetensors");
        throw new NotSupportedException($"{path}: unknown checkpoint extension '{ext}' (expected .safetensors, .ckpt, .pt or .pth)");
    }
}
