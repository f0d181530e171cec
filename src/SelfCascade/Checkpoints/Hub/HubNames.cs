using System.Text;
using System.Text.RegularExpressions;

namespace SelfCascade.Checkpoints.Hub;

/// <summary>
/// The rules every name taken from the user, the disk or the hub's answers must pass before it becomes part of a
/// path or a URL: repo ids (huggingface_hub's validate_repo_id), revisions, commit hashes (refs files, X-Repo-Commit,
/// the API's sha), ETags (blob file names) and repository file paths (the API's listing). A name that fails is one
/// <see cref="HubException"/> of kind <see cref="HubErrorKind.UnsafeName"/>; nothing is created from it.
/// </summary>
public static partial class HubNames
{
    /// <summary>Longest repository file path accepted (the hub's own limit is far below what paths allow).</summary>
    public const int MaxPathLength = 1024;

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitRegex();

    [GeneratedRegex("^(?:[0-9a-f]{40}|[0-9a-f]{64})$")]
    private static partial Regex EtagRegex();

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex Sha256Regex();

    // huggingface_hub's REPO_ID_REGEX part, ASCII only: letters, digits, '_', '-', '.'; 1..96 characters.
    [GeneratedRegex("^[A-Za-z0-9_.\\-]{1,96}$")]
    private static partial Regex RepoPartRegex();

    [GeneratedRegex("^[A-Za-z0-9_.\\-+/]{1,255}$")]
    private static partial Regex RevisionRegex();

    /// <summary>A full git commit id as the cache names snapshot folders: 40 lowercase hex digits.</summary>
    public static bool IsCommitHash(string? s) => s is not null && CommitRegex().IsMatch(s);

    /// <summary>True for an LFS ETag (the file's sha256), which is checked against the downloaded bytes.</summary>
    public static bool IsSha256(string etag) => Sha256Regex().IsMatch(etag);

    /// <summary>One part of `namespace/name`: the hub's characters, no leading/trailing '-' or '.', no "--"/"..".</summary>
    public static bool IsRepoPart(string s) =>
        RepoPartRegex().IsMatch(s) && s[0] is not ('-' or '.') && s[^1] is not ('-' or '.')
        && !s.Contains("--", StringComparison.Ordinal) && !s.Contains("..", StringComparison.Ordinal);

    /// <summary>A branch, tag or commit: no "..", no empty, '.' or '..' segments, no backslashes or control characters.</summary>
    public static bool IsRevision(string s) =>
        RevisionRegex().IsMatch(s) && s.Split('/').All(seg => seg.Length > 0 && seg != "." && seg != "..")
        && !s.Contains("..", StringComparison.Ordinal) && !s.EndsWith(".lock", StringComparison.Ordinal);

    /// <summary>The commit read from a refs file or an HTTP answer, or one error naming where it came from.</summary>
    public static string RequireCommit(string? value, string source)
    {
        if (IsCommitHash(value)) return value!;
        throw new HubException(HubErrorKind.UnsafeName, $"{source}: not a 40-hex commit hash ({Show(value)})");
    }

    /// <summary>
    /// The ETag as huggingface_hub normalises it (`W/"x"` or `"x"` to x), which must be a git blob id (40 hex) or an
    /// LFS sha256 (64 hex): it becomes a file name under blobs/.
    /// </summary>
    public static string NormalizeEtag(string? etag, string source)
    {
        var v = etag?.Trim();
        if (v is not null && v.StartsWith("W/", StringComparison.Ordinal)) v = v[2..];
        v = v?.Trim('"').ToLowerInvariant();
        if (v is not null && EtagRegex().IsMatch(v)) return v;
        throw new HubException(HubErrorKind.UnsafeName, $"{source}: ETag {Show(etag)} is not a 40- or 64-hex digest");
    }

    /// <summary>
    /// A path inside a repository as the hub lists it (`unet/config.json`): forward slashes, no empty, '.' or '..'
    /// segments, not absolute, no backslash, colon or control character, at most <see cref="MaxPathLength"/>
    /// characters. Returned unchanged when safe.
    /// </summary>
    public static string RequireRepoPath(string? path, string source)
    {
        string? why = null;
        if (string.IsNullOrEmpty(path)) why = "empty";
        else if (path.Length > MaxPathLength) why = $"longer than {MaxPathLength} characters";
        else if (path.Contains('\\')) why = "contains a backslash";
        else if (path.Contains(':')) why = "contains a colon";
        else if (path.Any(c => char.IsControl(c) || c is '\u2028' or '\u2029')) why = "contains a control character";
        else if (path.StartsWith('/') || path.StartsWith('~')) why = "is absolute";
        else
        {
            foreach (var seg in path.Split('/'))
            {
                if (seg.Length == 0) { why = "has an empty segment"; break; }
                if (seg is "." or "..") { why = "has a '.' or '..' segment"; break; }
                if (seg.Length > 255) { why = "has a segment longer than 255 characters"; break; }
            }
        }
        if (why is null) return path!;
        throw new HubException(HubErrorKind.UnsafeName, $"{source}: unsafe file name {Show(path)} ({why})");
    }

    /// <summary>
    /// <paramref name="root"/>/<paramref name="relative"/> after <see cref="RequireRepoPath"/>, checked once more
    /// to lie strictly inside <paramref name="root"/> (huggingface_hub's _get_pointer_path check).
    /// </summary>
    public static string Inside(string root, string relative, string source)
    {
        RequireRepoPath(relative, source);
        var full = Path.GetFullPath(Path.Combine(root, relative.Replace('/', Path.DirectorySeparatorChar)));
        var prefix = Path.GetFullPath(root).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
        if (!full.StartsWith(prefix, StringComparison.Ordinal))
            throw new HubException(HubErrorKind.UnsafeName, $"{source}: {Show(relative)} would lie outside {root}");
        return full;
    }

    /// <summary>A value quoted for an error message: control characters escaped, at most 80 characters.</summary>
    public static string Show(string? value)
    {
        if (value is null) return "(none)";
        var sb = new StringBuilder("'");
        foreach (var c in value.Length > 80 ? value[..80] : value)
            sb.Append(char.IsControl(c) || c is '\u2028' or '\u2029' ? $"\\u{(int)c:x4}" : c.ToString());
        if (value.Length > 80) sb.Append("...");
        return sb.Append('\'').ToString();
    }
}
