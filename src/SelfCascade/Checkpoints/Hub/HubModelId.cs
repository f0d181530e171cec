namespace SelfCascade.Checkpoints.Hub;

/// <summary>
/// A model on the Hugging Face hub as `--model` takes it: `org/name[@revision]` for a repository (a diffusers
/// folder, or a repository holding one single-file checkpoint), or `org/name/path/file.safetensors[@revision]`
/// for one file in it. The revision (branch, tag or commit; default `main`) follows the first '@' and may
/// contain '/' (`refs/pr/1`); file names containing '@' cannot be named this way.
/// </summary>
public sealed record HubModelId(string RepoId, string Revision, string? FilePath)
{
    public const string DefaultRevision = "main";

    /// <summary>The cache folder name: `models--org--name` (huggingface_hub's repo_folder_name).</summary>
    public string CacheFolderName => "models--" + RepoId.Replace("/", "--", StringComparison.Ordinal);

    public override string ToString() =>
        RepoId + (FilePath is null ? "" : "/" + FilePath) + (Revision == DefaultRevision ? "" : "@" + Revision);

    /// <summary>Parses <paramref name="text"/>, or gives the reason it is not a hub id.</summary>
    public static bool TryParse(string? text, out HubModelId? id, out string? error)
    {
        id = null;
        error = Check(text, out var repo, out var rev, out var file);
        if (error is not null) return false;
        id = new HubModelId(repo!, rev!, file);
        return true;
    }

    /// <summary>Parses <paramref name="text"/> or throws one <see cref="HubErrorKind.UnsafeName"/> error.</summary>
    public static HubModelId Parse(string text) =>
        TryParse(text, out var id, out var error) ? id! : throw new HubException(HubErrorKind.UnsafeName, $"{HubNames.Show(text)} is not a hub id: {error}");

    /// <summary>
    /// Whether <paramref name="text"/> has the shape of a hub id (`org/name`, optionally a path and `@rev`). A caller
    /// checks first that it is not an existing local path: `models/foo` is both.
    /// </summary>
    public static bool LooksLikeHubId(string? text) => TryParse(text, out _, out _);

    private static string? Check(string? text, out string? repo, out string? rev, out string? file)
    {
        repo = rev = file = null;
        if (string.IsNullOrEmpty(text)) return "empty";
        if (text.Length > 2048) return "too long";
        var at = text.IndexOf('@');
        var left = at < 0 ? text : text[..at];
        rev = at < 0 ? DefaultRevision : text[(at + 1)..];
        if (!HubNames.IsRevision(rev)) return $"revision {HubNames.Show(rev)} has characters or segments a revision cannot have";
        var parts = left.Split('/');
        if (parts.Length < 2) return "expected org/name";
        if (!HubNames.IsRepoPart(parts[0]) || !HubNames.IsRepoPart(parts[1]) || parts[1].EndsWith(".git", StringComparison.Ordinal))
            return $"{HubNames.Show(parts[0] + "/" + parts[1])} is not a repository id (letters, digits, '-', '_', '.'; no '--' or '..')";
        repo = parts[0] + "/" + parts[1];
        if (parts.Length > 2)
        {
            file = string.Join('/', parts.Skip(2));
            try { HubNames.RequireRepoPath(file, "file path"); }
            catch (HubException e) { return e.Message; }
        }
        return null;
    }
}
