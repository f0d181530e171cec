using System.ComponentModel;
using System.Diagnostics;

namespace SelfCascade.Data;

/// <summary>An icon set on disk: its icons.json and info.json (info.json may be absent for --icons-json input).</summary>
public sealed record IconSetFiles(string Set, string? Version, string IconsJson, string? InfoJson, bool FromCache);

/// <summary>
/// Fetches <c>@iconify-json/SET@VERSION</c> with the ordinary npm client (<c>npm pack</c>, which downloads the
/// tarball without installing anything), extracts icons.json and info.json, and caches them under
/// <c>CACHE/SET@VERSION/</c> so later runs need no network.
/// </summary>
public sealed class IconifyPackageFetcher(string cacheDir, string npmCommand = "npm")
{
    /// <summary>The pinned versions of the default sets (fluent-emoji-flat: MIT, noto: Apache-2.0).</summary>
    public static readonly IReadOnlyDictionary<string, string> PinnedVersions = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["fluent-emoji-flat"] = "1.2.6",
        ["noto"] = "1.2.9",
    };

    public static readonly TimeSpan NpmTimeout = TimeSpan.FromMinutes(5);

    /// <summary>"noto" (pinned version) or "noto@1.2.9" -> (set, version); a set without a pin needs an explicit version.</summary>
    public static (string Set, string Version) ParseSpec(string spec)
    {
        var parts = spec.Trim().Split('@', 2);
        var set = parts[0].Trim();
        if (set.Length == 0 || set.Any(c => !(char.IsAsciiLetterOrDigit(c) || c == '-')))
            throw new ArgumentException($"icon set '{spec}' is not an @iconify-json package name (letters, digits, dashes)");
        if (parts.Length == 2 && parts[1].Trim().Length > 0) return (set, parts[1].Trim());
        if (PinnedVersions.TryGetValue(set, out var v)) return (set, v);
        throw new ArgumentException($"icon set '{set}' has no pinned version: name one as {set}@VERSION");
    }

    public static string PackageName(string set) => "@iconify-json/" + set;

    /// <summary>The command to run by hand when npm cannot be run here.</summary>
    public static string ManualCommand(string set, string version, string destination) =>
        $"npm pack {PackageName(set)}@{version} --pack-destination {destination}";

    public IconSetFiles Fetch(string set, string version, CancellationToken cancellation = default)
    {
        var dir = Path.Combine(cacheDir, $"{set}@{version}");
        var icons = Path.Combine(dir, "icons.json");
        var info = Path.Combine(dir, "info.json");
        if (File.Exists(icons) && File.Exists(info)) return new IconSetFiles(set, version, icons, info, FromCache: true);

        Directory.CreateDirectory(dir);
        var tgz = Pack(set, version, dir, cancellation);
        try
        {
            var files = NpmTarball.ReadFiles(tgz, "icons.json", "info.json");
            WriteAtomically(info, files["info.json"]);
            WriteAtomically(icons, files["icons.json"]);
        }
        finally { File.Delete(tgz); }
        return new IconSetFiles(set, version, icons, info, FromCache: false);
    }

    /// <summary>Runs <c>npm pack</c> into <paramref name="destination"/> and returns the tarball's path.</summary>
    private string Pack(string set, string version, string destination, CancellationToken cancellation)
    {
        var manual = ManualCommand(set, version, destination);
        var start = new ProcessStartInfo(npmCommand)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = destination,
        };
        foreach (var a in new[] { "pack", $"{PackageName(set)}@{version}", "--pack-destination", destination }) start.ArgumentList.Add(a);

        Process process;
        try { process = Process.Start(start) ?? throw new InvalidOperationException("no process"); }
        catch (Exception e) when (e is Win32Exception or InvalidOperationException)
        {
            throw new InvalidOperationException(
                $"could not run '{npmCommand}' ({e.Message}). Install Node.js/npm, or run by hand: {manual} " +
                "and pass the icons.json inside the .tgz with --icons-json", e);
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync(cancellation);
            var stderr = process.StandardError.ReadToEndAsync(cancellation);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            timeout.CancelAfter(NpmTimeout);
            try { process.WaitForExitAsync(timeout.Token).GetAwaiter().GetResult(); }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                cancellation.ThrowIfCancellationRequested();
                throw new InvalidOperationException($"'{manual}' did not finish within {NpmTimeout.TotalMinutes} minutes; run it by hand");
            }
            if (process.ExitCode != 0)
            {
                var err = stderr.GetAwaiter().GetResult().Trim();
                var tail = string.Join(" | ", err.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).TakeLast(3));
                throw new InvalidOperationException($"'{manual}' failed with exit code {process.ExitCode}: {tail}. " +
                    "Run it by hand (network, proxy, registry) and pass the icons.json inside the .tgz with --icons-json");
            }
            // npm prints the tarball's file name as its last line: iconify-json-noto-1.2.9.tgz.
            var printed = stdout.GetAwaiter().GetResult().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
            var candidates = new[] { printed, $"iconify-json-{set}-{version}.tgz" }.Where(n => !string.IsNullOrEmpty(n)).Select(n => Path.Combine(destination, Path.GetFileName(n!)));
            return candidates.FirstOrDefault(File.Exists)
                ?? throw new InvalidOperationException($"'{manual}' succeeded but wrote no .tgz in {destination}");
        }
    }

    private static void WriteAtomically(string path, byte[] bytes)
    {
        var tmp = path + ".tmp-" + Environment.ProcessId;
        File.WriteAllBytes(tmp, bytes);
        File.Move(tmp, path, overwrite: true);
    }
}
