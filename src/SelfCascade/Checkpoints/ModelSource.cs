using SelfCascade.Checkpoints.SingleFile;

namespace SelfCascade.Checkpoints;

/// <summary>What a <c>--model</c> value names.</summary>
public enum ModelSourceKind
{
    /// <summary>A diffusers folder (model_index.json).</summary>
    Folder,
    /// <summary>One checkpoint file in the original layout (.safetensors; .ckpt/.pt through the pickle reader).</summary>
    SingleFile,
}

/// <summary>A resolved <c>--model</c> value: the kind and the local path it came to.</summary>
public sealed record ModelSource(ModelSourceKind Kind, string Path, string Spec)
{
    /// <summary>
    /// Resolves a <c>--model</c> value: an existing folder, an existing checkpoint file. (Hub ids
    /// <c>org/name[@rev]</c> resolve to a local snapshot folder or file first, then come here.)
    /// </summary>
    public static ModelSource Resolve(string spec)
    {
        if (string.IsNullOrWhiteSpace(spec)) throw new ArgumentException("no model given");
        if (Directory.Exists(spec)) return new ModelSource(ModelSourceKind.Folder, System.IO.Path.GetFullPath(spec), spec);
        if (File.Exists(spec))
        {
            if (!TensorSourceFactory.IsCheckpointFile(spec))
                throw new ArgumentException($"{spec}: not a model folder or a checkpoint file (.safetensors, .ckpt, .pt, .pth)");
            return new ModelSource(ModelSourceKind.SingleFile, System.IO.Path.GetFullPath(spec), spec);
        }
        throw new FileNotFoundException($"{spec}: no such model folder or checkpoint file", spec);
    }

    /// <summary>Opens the component set: the folder as it is, or the single file through its key maps.</summary>
    public IModelComponents Open(SingleFileOptions? singleFile = null) => Kind switch
    {
        ModelSourceKind.Folder => FolderComponents.Open(Path),
        _ => SingleFileCheckpoint.Open(Path, singleFile),
    };

    /// <summary><see cref="Resolve"/> then <see cref="Open"/>.</summary>
    public static IModelComponents OpenComponents(string spec, SingleFileOptions? singleFile = null) => Resolve(spec).Open(singleFile);
}
