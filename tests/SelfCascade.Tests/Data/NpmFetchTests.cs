using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using SelfCascade.Data;

namespace SelfCascade.Tests.Data;

public sealed class NpmFetchTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-npm-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>A .tgz laid out as npm packs it: every file under package/, plus a folder entry.</summary>
    private static void WriteTgz(string path, IReadOnlyDictionary<string, string> files)
    {
        using var file = File.Create(path);
        using var gzip = new GZipStream(file, CompressionLevel.Fastest);
        using var tar = new TarWriter(gzip, TarEntryFormat.Pax);
        tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "package/"));
        foreach (var (name, text) in files)
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "package/" + name) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(text)) });
    }

    [Fact]
    public void ReadsNamedFilesFromAnNpmTarball()
    {
        var tgz = Path.Combine(_dir, "p.tgz");
        WriteTgz(tgz, new Dictionary<string, string> { ["README.md"] = "readme", ["icons.json"] = TestIconSet.Json, ["info.json"] = "{\"name\":\"x\"}", ["lib/icons.json"] = "not this one" });
        var files = NpmTarball.ReadFiles(tgz, "icons.json", "info.json");
        Assert.Equal(2, files.Count);
        Assert.Equal(TestIconSet.Json, Encoding.UTF8.GetString(files["icons.json"]));
        Assert.Equal("{\"name\":\"x\"}", Encoding.UTF8.GetString(files["info.json"]));
    }

    [Fact]
    public void MissingFileInTarballIsNamed()
    {
        var tgz = Path.Combine(_dir, "p.tgz");
        WriteTgz(tgz, new Dictionary<string, string> { ["icons.json"] = "{}" });
        var e = Assert.Throws<InvalidDataException>(() => NpmTarball.ReadFiles(tgz, "icons.json", "info.json"));
        Assert.Contains("info.json", e.Message);
    }

    [Theory]
    [InlineData("noto", "noto", "1.2.9")]
    [InlineData("fluent-emoji-flat", "fluent-emoji-flat", "1.2.6")]
    [InlineData(" noto@1.2.0 ", "noto", "1.2.0")]
    [InlineData("twemoji@1.2.3", "twemoji", "1.2.3")]
    public void SetSpecsResolvePinnedVersions(string spec, string set, string version) =>
        Assert.Equal((set, version), IconifyPackageFetcher.ParseSpec(spec));

    [Theory]
    [InlineData("twemoji")]
    [InlineData("../evil@1")]
    [InlineData("")]
    public void BadSetSpecsAreRejected(string spec) => Assert.Throws<ArgumentException>(() => IconifyPackageFetcher.ParseSpec(spec));

    [Fact]
    public void MissingNpmGivesTheCommandToRunByHand()
    {
        var fetcher = new IconifyPackageFetcher(Path.Combine(_dir, "cache"), npmCommand: Path.Combine(_dir, "no-such-npm"));
        var e = Assert.Throws<InvalidOperationException>(() => fetcher.Fetch("noto", "1.2.9"));
        Assert.Contains("npm pack @iconify-json/noto@1.2.9 --pack-destination", e.Message);
        Assert.Contains("--icons-json", e.Message);
    }

    [Fact]
    public void CachedSetNeedsNoNpm()
    {
        var cache = Path.Combine(_dir, "cache");
        TestIconSet.Write(Path.Combine(cache, "noto@1.2.9"));
        File.WriteAllText(Path.Combine(cache, "noto@1.2.9", "info.json"), "{}");
        var files = new IconifyPackageFetcher(cache, npmCommand: Path.Combine(_dir, "no-such-npm")).Fetch("noto", "1.2.9");
        Assert.True(files.FromCache);
        Assert.Equal(Path.Combine(cache, "noto@1.2.9", "icons.json"), files.IconsJson);
    }

    [Fact]
    public void FetchRunsNpmPackAndExtractsIntoTheCache()
    {
        if (OperatingSystem.IsWindows()) return; // the stand-in npm is a shell script
        var tgz = Path.Combine(_dir, "prepared.tgz");
        WriteTgz(tgz, new Dictionary<string, string> { ["icons.json"] = TestIconSet.Json, ["info.json"] = """{"license":{"spdx":"MIT"}}""" });
        // A stand-in npm that checks its arguments and "downloads" the prepared tarball, printing its name as npm does.
        var npm = Path.Combine(_dir, "npm");
        var log = Path.Combine(_dir, "npm.log");
        File.WriteAllText(npm, $"""
            #!/bin/sh
            echo "$@" >> '{log}'
            [ "$1" = pack ] && [ "$2" = "@iconify-json/test-set@9.9.9" ] && [ "$3" = --pack-destination ] || {"{"} echo "bad args" >&2; exit 3; {"}"}
            cp '{tgz}' "$4/iconify-json-test-set-9.9.9.tgz"
            echo iconify-json-test-set-9.9.9.tgz
            """.Replace("\r", ""));
        File.SetUnixFileMode(npm, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var cache = Path.Combine(_dir, "cache");
        var fetcher = new IconifyPackageFetcher(cache, npm);

        var files = fetcher.Fetch("test-set", "9.9.9");
        Assert.False(files.FromCache);
        Assert.Equal(TestIconSet.Json, File.ReadAllText(files.IconsJson));
        Assert.Equal("MIT", IconifyInfo.Load(files.InfoJson!).LicenseSpdx);
        Assert.Equal(["icons.json", "info.json"], Directory.GetFiles(Path.Combine(cache, "test-set@9.9.9")).Select(Path.GetFileName).Order());

        Assert.True(fetcher.Fetch("test-set", "9.9.9").FromCache);
        Assert.Single(File.ReadAllLines(log)); // the second fetch came from the cache

        var e = Assert.Throws<InvalidOperationException>(() => fetcher.Fetch("other", "1.0.0"));
        Assert.Contains("exit code 3", e.Message);
        Assert.Contains("bad args", e.Message);
        Assert.Contains("npm pack @iconify-json/other@1.0.0", e.Message);
    }
}
