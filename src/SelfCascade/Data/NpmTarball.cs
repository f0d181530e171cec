using System.Formats.Tar;
using System.IO.Compression;

namespace SelfCascade.Data;

/// <summary>Reads files out of an npm package tarball (.tgz: gzip over tar, every entry under <c>package/</c>).</summary>
public static class NpmTarball
{
    /// <summary>
    /// The contents of the named files (paths relative to the package root, e.g. <c>icons.json</c>); the tarball's
    /// first path segment (npm writes <c>package/</c>) is ignored. Throws when one is missing.
    /// </summary>
    public static IReadOnlyDictionary<string, byte[]> ReadFiles(string tgzPath, params string[] relativePaths)
    {
        using var file = File.OpenRead(tgzPath);
        return ReadFiles(file, relativePaths, tgzPath);
    }

    public static IReadOnlyDictionary<string, byte[]> ReadFiles(Stream tgz, IReadOnlyList<string> relativePaths, string source = "tarball")
    {
        var wanted = new HashSet<string>(relativePaths, StringComparer.Ordinal);
        var found = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        using var gzip = new GZipStream(tgz, CompressionMode.Decompress, leaveOpen: true);
        using var tar = new TarReader(gzip);
        while (tar.GetNextEntry() is { } entry)
        {
            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || entry.DataStream is null) continue;
            var name = entry.Name.Replace('\\', '/').TrimStart('.', '/');
            int slash = name.IndexOf('/');
            var relative = slash >= 0 ? name[(slash + 1)..] : name;
            if (!wanted.Contains(relative) || found.ContainsKey(relative)) continue;
            using var buffer = new MemoryStream();
            entry.DataStream.CopyTo(buffer);
            found[relative] = buffer.ToArray();
        }
        var missing = relativePaths.Where(p => !found.ContainsKey(p)).ToList();
        if (missing.Count > 0) throw new InvalidDataException($"{source}: no {string.Join(", ", missing)} in the package");
        return found;
    }
}
