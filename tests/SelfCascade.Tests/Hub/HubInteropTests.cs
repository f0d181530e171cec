using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SelfCascade.Checkpoints.Hub;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Hub;

/// <summary>
/// The cache layout against huggingface_hub v0.22.2's own: tests/reference/hub/python_layout.json records what its
/// snapshot_download wrote for a tiny repository (make_hub_layout.py). Our download of the same repository must
/// write exactly that (paths, relative link targets, blob names and bytes, refs), and the recorded cache,
/// rebuilt on disk, must resolve with no network.
/// </summary>
public sealed class HubInteropTests : IAsyncLifetime
{
    private HubTestContext _hub = null!;
    private JsonNode _record = null!;
    private Dictionary<string, byte[]> _files = null!;
    private string _repo = null!, _commit = null!;

    public async Task InitializeAsync()
    {
        _hub = await HubTestContext.StartAsync();
        _record = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures.RepoRoot, "tests", "reference", "hub", "python_layout.json")))!;
        _repo = (string)_record["repo"]!;
        _commit = (string)_record["commit"]!;
        _files = new(StringComparer.Ordinal);
        foreach (var (path, spec) in _record["files"]!.AsObject())
            _files[path] = spec!["text"] is JsonNode t ? Encoding.UTF8.GetBytes((string)t!)
                : Enumerable.Range(0, (int)spec["lfs_size"]!).Select(i => (byte)((i * 31 + 7) % 251)).ToArray();
    }

    public async Task DisposeAsync() => await _hub.DisposeAsync();

    [Fact]
    public async Task Our_download_writes_exactly_the_layout_huggingface_hub_writes()
    {
        _hub.Server.Add(_repo, _commit, _files);
        var r = await HubModelResolver.ResolveAsync(_repo, _hub.Options());
        Assert.Equal(HubModelKind.DiffusersFolder, r.Kind);
        var expected = _record["layout"]!.AsArray().Select(e => e!.ToJsonString()).ToList();
        var ours = Layout(_hub.Cache).Select(e => e.ToJsonString()).ToList();
        Assert.Equal(expected, ours);

        // For the script-made reverse check (huggingface_hub reading our cache): make_hub_layout.py --check-ours DIR.
        if (Environment.GetEnvironmentVariable("SELFCASCADE_HUB_INTEROP_OUT") is { Length: > 0 } keep)
            await HubModelResolver.ResolveAsync(_repo, _hub.Options() with { CacheDir = keep });
    }

    [Fact]
    public async Task A_cache_written_by_huggingface_hub_resolves_without_network()
    {
        // Rebuild the recorded cache on disk: folders, blobs (bytes by their sha256), refs, relative links.
        var bySha = _files.Values.ToDictionary(d => Convert.ToHexStringLower(SHA256.HashData(d)), d => d);
        foreach (var e in _record["layout"]!.AsArray())
        {
            var path = Path.Combine(_hub.Cache, ((string)e!["path"]!).Replace('/', Path.DirectorySeparatorChar));
            switch ((string)e["kind"]!)
            {
                case "dir": Directory.CreateDirectory(path); break;
                case "link": File.CreateSymbolicLink(path, (string)e["target"]!); break;
                default:
                    File.WriteAllBytes(path, e["text"] is JsonNode t ? Encoding.UTF8.GetBytes((string)t!) : bySha[(string)e["sha256"]!]);
                    break;
            }
        }
        var offline = await HubModelResolver.ResolveAsync(_repo, _hub.Options(offline: true));
        Assert.Equal(Path.Combine(_hub.RepoDir(_repo), "snapshots", _commit), offline.Path);
        foreach (var (f, data) in _files) Assert.Equal(data, File.ReadAllBytes(Path.Combine(offline.Path, f)));
        // Online (the server knows nothing of this repository): the cache answers, no request is made.
        var online = await HubModelResolver.ResolveAsync(_repo, _hub.Options());
        Assert.Equal(offline.Path, online.Path);
        Assert.Empty(_hub.Server.Requests);
    }

    /// <summary>The same record make_hub_layout.py writes: every entry but .locks, sorted by path.</summary>
    private static List<JsonObject> Layout(string cache)
    {
        var list = new List<JsonObject>();
        foreach (var full in Directory.EnumerateFileSystemEntries(cache, "*", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(cache, full).Replace('\\', '/');
            if (rel.StartsWith(".locks", StringComparison.Ordinal)) continue;
            var info = new FileInfo(full);
            if (info.LinkTarget is string target) list.Add(new JsonObject { ["kind"] = "link", ["path"] = rel, ["target"] = target });
            else if (Directory.Exists(full)) list.Add(new JsonObject { ["kind"] = "dir", ["path"] = rel });
            else
            {
                var data = File.ReadAllBytes(full);
                var o = new JsonObject { ["kind"] = "file", ["path"] = rel, ["sha256"] = Convert.ToHexStringLower(SHA256.HashData(data)), ["size"] = data.Length };
                if (("/" + rel).Contains("/refs/", StringComparison.Ordinal)) o["text"] = Encoding.UTF8.GetString(data);
                list.Add(o);
            }
        }
        return list.OrderBy(o => (string)o["path"]!, StringComparer.Ordinal).ToList();
    }
}
