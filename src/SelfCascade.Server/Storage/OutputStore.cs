namespace SelfCascade.Server.Storage;

/// <summary>
/// Job outputs on disk: DATA/jobs/{id}/{file}. Ids are server-made GUIDs and file names server-made too; both are
/// checked again here (<see cref="IsValidJobId"/>, <see cref="IsValidFileName"/>) so no request can name a path
/// outside the job's folder.
/// </summary>
public sealed class OutputStore(string dataDir)
{
    public string Root { get; } = Path.GetFullPath(Path.Combine(dataDir, "jobs"));

    public string JobDir(string id)
    {
        if (!IsValidJobId(id)) throw new ArgumentException($"'{id}' is not a job id");
        return Path.Combine(Root, id);
    }

    /// <summary>The path of a job's file, or null if the id or name is not one the server makes or the file is absent.</summary>
    public string? Find(string id, string file)
    {
        if (!IsValidJobId(id) || !IsValidFileName(file)) return null;
        var path = Path.Combine(Root, id, file);
        return File.Exists(path) ? path : null;
    }

    public string PathFor(string id, string file)
    {
        if (!IsValidFileName(file)) throw new ArgumentException($"'{file}' is not an output file name");
        return Path.Combine(JobDir(id), file);
    }

    /// <summary>A GUID in its 36-character "D" form, lower case.</summary>
    public static bool IsValidJobId(string? id) =>
        id is { Length: 36 } && Guid.TryParseExact(id, "D", out _) && id == id.ToLowerInvariant();

    /// <summary>Letters, digits, '-', '_' and one ".png" suffix: the names the server writes.</summary>
    public static bool IsValidFileName(string? name) =>
        name is { Length: > 4 and <= 100 } && name.EndsWith(".png", StringComparison.Ordinal)
        && name[..^4].All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');
}
