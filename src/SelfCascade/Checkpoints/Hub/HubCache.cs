using System.Text;

namespace SelfCascade.Checkpoints.Hub;

/// <summary>
/// The huggingface_hub cache layout (v0.22 file_download.py), shared with Python tools in both directions:
/// <code>
/// {root}/models--org--name/refs/{revision}                  the commit hash (40 hex, no newline)
/// {root}/models--org--name/blobs/{etag}                      file contents; etag = git blob sha1 or LFS sha256
/// {root}/models--org--name/blobs/{etag}.incomplete           a partial download, resumed with an HTTP Range
/// {root}/models--org--name/snapshots/{commit}/{path}         relative symlink to ../../(..)blobs/{etag}
/// {root}/.locks/models--org--name/{etag}.lock                held while that blob downloads
/// </code>
/// Every name read back from disk is validated (<see cref="HubNames"/>).
/// </summary>
public sealed class HubCache(string root)
{
    /// <summary>Largest refs file read: a commit hash is 40 bytes.</summary>
    private const int MaxRefBytes = 1024;

    public string Root { get; } = Path.GetFullPath(root);

    /// <summary>HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface (huggingface_hub constants.py).</summary>
    public static string HfHome(Func<string, string?> env)
    {
        if (env("HF_HOME") is { Length: > 0 } home) return ExpandUser(home);
        var xdg = env("XDG_CACHE_HOME") is { Length: > 0 } x ? ExpandUser(x) : Path.Combine(UserHome(), ".cache");
        return Path.Combine(xdg, "huggingface");
    }

    /// <summary>HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE (legacy), else HF_HOME/hub.</summary>
    public static string DefaultRoot(Func<string, string?> env)
    {
        foreach (var name in new[] { "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE" })
            if (env(name) is { Length: > 0 } v) return Path.GetFullPath(ExpandUser(v));
        return Path.GetFullPath(Path.Combine(HfHome(env), "hub"));
    }

    public string RepoFolder(HubModelId id) => Path.Combine(Root, id.CacheFolderName);

    public string RefPath(HubModelId id, string revision) => HubNames.Inside(Path.Combine(RepoFolder(id), "refs"), revision, "revision");

    public string SnapshotDir(HubModelId id, string commit) =>
        Path.Combine(RepoFolder(id), "snapshots", HubNames.RequireCommit(commit, "snapshot"));

    /// <summary>snapshots/{commit}/{path}, the path checked to stay inside the snapshot.</summary>
    public string PointerPath(HubModelId id, string commit, string repoPath) =>
        HubNames.Inside(SnapshotDir(id, commit), repoPath, $"{id.RepoId}@{commit}");

    public string BlobsDir(HubModelId id) => Path.Combine(RepoFolder(id), "blobs");

    public string BlobPath(HubModelId id, string etag) => Path.Combine(BlobsDir(id), HubNames.NormalizeEtag(etag, "blob"));

    public string LockPath(HubModelId id, string etag) => Path.Combine(Root, ".locks", id.CacheFolderName, etag + ".lock");

    /// <summary>
    /// The commit a revision points at: the revision itself when it is a full commit hash, else the contents of
    /// refs/{revision} (null when absent). A refs file that is not exactly a 40-hex commit (surrounding whitespace
    /// aside) is an error, never a path.
    /// </summary>
    public string? ReadCommit(HubModelId id, string revision)
    {
        if (HubNames.IsCommitHash(revision)) return revision;
        var path = RefPath(id, revision);
        var info = new FileInfo(path);
        if (!info.Exists) return Directory.Exists(path)
            ? throw new HubException(HubErrorKind.UnsafeName, $"{path}: a folder where a refs file should be")
            : null;
        if (info.Length > MaxRefBytes)
            throw new HubException(HubErrorKind.UnsafeName, $"{path}: {info.Length} bytes, not a 40-hex commit hash");
        var text = Encoding.UTF8.GetString(File.ReadAllBytes(path));
        return HubNames.RequireCommit(text.Trim(' ', '\t', '\r', '\n'), path);
    }

    /// <summary>refs/{revision} = commit, written only when it changed (as huggingface_hub does); nothing for a commit.</summary>
    public void WriteRef(HubModelId id, string revision, string commit)
    {
        HubNames.RequireCommit(commit, "commit");
        if (revision == commit) return;
        var path = RefPath(id, revision);
        if (File.Exists(path) && ReadCommitOrNull(path) == commit) return;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var tmp = path + ".tmp-" + Guid.NewGuid().ToString("N");
        File.WriteAllText(tmp, commit);
        File.Move(tmp, path, overwrite: true);
    }

    private static string? ReadCommitOrNull(string path)
    {
        try { return new FileInfo(path).Length <= MaxRefBytes ? File.ReadAllText(path).Trim() : null; }
        catch (IOException) { return null; }
    }

    /// <summary>
    /// Points snapshots/{commit}/{path} at blobs/{etag} with a relative symlink, as huggingface_hub's
    /// _create_symlink does (`../../blobs/x` from the snapshot root, one more `..` per folder level), so the cache
    /// can be moved. Where symlinks are not allowed (Windows without the privilege) the blob is copied instead.
    /// </summary>
    public static void Link(string blobPath, string pointerPath)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(pointerPath)!);
        if (File.Exists(pointerPath) || new FileInfo(pointerPath).LinkTarget is not null) File.Delete(pointerPath);
        var relative = Path.GetRelativePath(Path.GetDirectoryName(pointerPath)!, blobPath);
        try { File.CreateSymbolicLink(pointerPath, relative); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException && OperatingSystem.IsWindows())
        {
            File.Copy(blobPath, pointerPath, overwrite: true);
        }
    }

    /// <summary>
    /// The file a snapshot entry holds, or null when it is missing or a dangling link. A symlink must resolve into
    /// this repository's blobs/ folder (what huggingface_hub creates); anything else is refused.
    /// </summary>
    public string? ExistingEntry(HubModelId id, string commit, string repoPath)
    {
        var pointer = PointerPath(id, commit, repoPath);
        // huggingface_hub links files, never folders: a linked folder on the way (snapshots/<c>/unet -> /etc) is refused.
        var snapshot = SnapshotDir(id, commit);
        for (var dir = new DirectoryInfo(Path.GetDirectoryName(pointer)!); dir.FullName.Length >= snapshot.Length; dir = dir.Parent!)
        {
            if (dir.LinkTarget is string dirTarget)
                throw new HubException(HubErrorKind.UnsafeName, $"{dir.FullName}: a folder link (to {HubNames.Show(dirTarget)}) inside a snapshot");
            if (dir.FullName.Length == snapshot.Length) break;
        }
        var info = new FileInfo(pointer);
        if (info.LinkTarget is string target)
        {
            var resolved = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(pointer)!, target));
            var blobs = Path.GetFullPath(BlobsDir(id)) + Path.DirectorySeparatorChar;
            if (!resolved.StartsWith(blobs, StringComparison.Ordinal) || resolved.IndexOf(Path.DirectorySeparatorChar, blobs.Length) >= 0)
                throw new HubException(HubErrorKind.UnsafeName, $"{pointer}: links to {HubNames.Show(target)}, outside the cache's blobs/ folder");
            return File.Exists(resolved) ? pointer : null;
        }
        return info.Exists ? pointer : null;
    }

    private static string ExpandUser(string p) =>
        p == "~" ? UserHome() : p.StartsWith("~/", StringComparison.Ordinal) ? Path.Combine(UserHome(), p[2..]) : p;

    private static string UserHome() => System.Environment.GetFolderPath(System.Environment.SpecialFolder.UserProfile);
}
