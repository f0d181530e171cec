namespace SelfCascade.Tests.Support;

/// <summary>Locates the read-only shared folder (../shared beside the repository, or SELFCASCADE_SHARED).</summary>
public static class Fixtures
{
    private static readonly Lazy<string> SharedRoot = new(FindShared);

    public static string Shared => SharedRoot.Value;
    public static string Parity => Path.Combine(Shared, "fixtures", "diffusers-parity");
    public static string ParityPath(params string[] parts) => Path.Combine([Parity, .. parts]);

    /// <summary>The repository root (the folder holding SelfCascade.slnx).</summary>
    public static string RepoRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "SelfCascade.slnx"))) return dir.FullName;
            throw new DirectoryNotFoundException("SelfCascade.slnx not found above " + AppContext.BaseDirectory);
        }
    }

    private static string FindShared()
    {
        var env = Environment.GetEnvironmentVariable("SELFCASCADE_SHARED");
        if (!string.IsNullOrEmpty(env)) return env;
        var candidate = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));
        if (Directory.Exists(candidate)) return candidate;
        throw new DirectoryNotFoundException($"shared fixtures not found at {candidate}; set SELFCASCADE_SHARED");
    }
}
