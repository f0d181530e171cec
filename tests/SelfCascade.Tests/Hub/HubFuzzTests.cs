using System.Text;
using SelfCascade.Checkpoints.Hub;
using Xunit.Abstractions;

namespace SelfCascade.Tests.Hub;

/// <summary>
/// Hostile names from disk and from the hub (refs files, listings, ETags, commits, snapshot links, ids): each is one
/// one-line <see cref="HubException"/>, nothing is written outside the cache and nothing lands in snapshots/.
/// </summary>
public sealed class HubFuzzTests(ITestOutputHelper output) : IAsyncLifetime
{
    private HubTestContext _hub = null!;
    public async Task InitializeAsync() => _hub = await HubTestContext.StartAsync();
    public async Task DisposeAsync() => await _hub.DisposeAsync();

    private int _cases;

    private async Task<HubException> Refused(Func<Task> act, HubErrorKind kind, string what)
    {
        var e = await Assert.ThrowsAsync<HubException>(act);
        Assert.True(e.Kind == kind, $"{what}: {e.Kind} ({e.Message})");
        Assert.False(e.Message.Contains('\n') || e.Message.Contains('\r'), $"{what}: several lines: {e.Message}");
        Assert.True(e.Message.Length < 600, $"{what}: message of {e.Message.Length} characters");
        _cases++;
        return e;
    }

    [Fact]
    public async Task Hostile_refs_listings_headers_links_and_ids_give_one_line_errors()
    {
        var commit = HubTestContext.Commit("fuzz");
        var files = HubTestContext.Distracting();
        _hub.Server.Add("org/sd", commit, files);
        var refs = Path.Combine(_hub.RepoDir("org/sd"), "refs");
        Directory.CreateDirectory(refs);
        var outside = Path.Combine(_hub.Dir, "outside");
        Directory.CreateDirectory(outside);

        // 1. refs/main contents (read offline, so only the disk speaks).
        string[] hostileRefs =
        [
            "", "main", "../../../etc/passwd", "/etc/passwd", commit[..39], commit + "0", commit.ToUpperInvariant(), commit + "\n" + commit,
            commit[..20] + "/" + commit[21..], "g" + commit[1..], "\0" + commit[1..], new string('a', 5000), "..\\..\\x" + commit[7..],
        ];
        foreach (var r in hostileRefs)
        {
            File.WriteAllBytes(Path.Combine(refs, "main"), Encoding.UTF8.GetBytes(r));
            var e = await Refused(() => HubModelResolver.ResolveAsync("org/sd", _hub.Options(offline: true)), HubErrorKind.UnsafeName, $"refs {r}");
            Assert.Contains("refs", e.Message);
        }
        File.WriteAllBytes(Path.Combine(refs, "main"), [0xff, 0xfe, 0x00, 0x41]);
        await Refused(() => HubModelResolver.ResolveAsync("org/sd", _hub.Options(offline: true)), HubErrorKind.UnsafeName, "binary refs");
        File.Delete(Path.Combine(refs, "main"));
        Directory.CreateDirectory(Path.Combine(refs, "main"));
        await Refused(() => HubModelResolver.ResolveAsync("org/sd", _hub.Options(offline: true)), HubErrorKind.UnsafeName, "refs folder");
        Directory.Delete(Path.Combine(refs, "main"));
        // Online too: a bad refs file is refused before any request.
        File.WriteAllText(Path.Combine(refs, "main"), "../../x");
        await Refused(() => HubModelResolver.ResolveAsync("org/sd", _hub.Options()), HubErrorKind.UnsafeName, "refs online");
        File.Delete(Path.Combine(refs, "main"));

        // 2. File names in the listing.
        string[] hostileNames =
        [
            "../../x", "../outside/evil.json", "unet/../../../x", "/etc/passwd", "~/.ssh/authorized_keys", "unet\\..\\..\\x", "C:/x",
            "C:\\x", "unet//config.json", "./model_index.json", "unet/./config.json", "unet/..", "..", ".", "", "a\u0000b", "a\nb",
            "unet/config.json\r", new string('x', 2000), new string('y', 300) + "/a", "x/\u2028/y",
        ];
        foreach (var name in hostileNames)
        {
            _hub.Server.ListingOverride = json => json.Replace("\"rfilename\":\"README.md\"", "\"rfilename\":" + System.Text.Json.JsonSerializer.Serialize(name));
            await Refused(() => HubModelResolver.ResolveAsync("org/sd", _hub.Options()), HubErrorKind.UnsafeName, $"listed {name}");
        }
        _hub.Server.ListingOverride = json => json.Replace("{\"rfilename\":\"README.md\"}", "{\"rfilename\":\"unet/config.json\"}");
        await Refused(() => HubModelResolver.ResolveAsync("org/sd", _hub.Options()), HubErrorKind.UnsafeName, "listed twice");

        // 3. Listings that are not what the hub sends.
        foreach (var (json, what) in new[]
        {
            ("not json", "text"), ("[]", "array"), ("{\"siblings\": []}", "no sha"), ($"{{\"sha\": \"../{commit[3..]}\", \"siblings\": []}}", "sha path"),
            ($"{{\"sha\": \"{commit}\", \"siblings\": {{}}}}", "siblings object"), ($"{{\"sha\": \"{commit}\", \"siblings\": [{{\"rfilename\": 5}}]}}", "name number"),
            (new string('[', 10_000), "deep"),
        })
        {
            _hub.Server.ListingOverride = _ => json;
            var kind = what is "sha path" ? HubErrorKind.UnsafeName : HubErrorKind.Protocol;
            await Refused(() => HubModelResolver.ResolveAsync("org/sd", _hub.Options()), kind, $"listing {what}");
        }
        _hub.Server.ListingOverride = null;

        // 4. Headers of resolve answers: ETags become blob names, X-Repo-Commit a snapshot folder.
        foreach (var (header, value) in new[]
        {
            ("ETag", "\"../../../x\""), ("ETag", "\"\""), ("ETag", "\"zz\""), ("ETag", "\"/etc/passwd\""), ("ETag", "W/\"..\\\\x\""),
            ("X-Repo-Commit", "../../x"), ("X-Repo-Commit", ""), ("X-Repo-Commit", HubTestContext.Commit("other")),
            ("X-Linked-Etag", "\"../blobs/x\""), ("X-Linked-Size", "-5"), ("X-Linked-Size", "12abc"),
        })
        {
            _hub.Server.HeaderOverride = (file, h) =>
            {
                if (file != "model_index.json" && file != "unet/diffusion_pytorch_model.safetensors") return;
                if (header == "ETag") { h.Remove("X-Linked-Etag"); }
                h[header] = value;
            };
            if (Directory.Exists(_hub.Cache)) Directory.Delete(_hub.Cache, true);
            var kind = header == "X-Linked-Size" || value == HubTestContext.Commit("other") ? HubErrorKind.Protocol : HubErrorKind.UnsafeName;
            await Refused(() => HubModelResolver.ResolveAsync("org/sd", _hub.Options()), kind, $"{header}: {value}");
            Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(_hub.Cache, "*", SearchOption.AllDirectories),
                p => p.Contains("snapshots", StringComparison.Ordinal) && File.Exists(p) && !p.EndsWith("model_index.json", StringComparison.Ordinal));
        }
        _hub.Server.HeaderOverride = null;

        // 5. A snapshot link that leaves the cache's blobs/ (a tampered cache).
        var ok = await HubModelResolver.ResolveAsync("org/sd", _hub.Options());
        var secret = Path.Combine(outside, "secret.json");
        File.WriteAllText(secret, "{}");
        var config = Path.Combine(ok.Path, "unet", "config.json");
        File.Delete(config);
        File.CreateSymbolicLink(config, secret);
        await Refused(() => HubModelResolver.ResolveAsync("org/sd", _hub.Options(offline: true)), HubErrorKind.UnsafeName, "link outside");
        File.Delete(config);
        File.CreateSymbolicLink(config, "../../../blobs/../../../outside/secret.json");
        await Refused(() => HubModelResolver.ResolveAsync("org/sd", _hub.Options(offline: true)), HubErrorKind.UnsafeName, "relative link outside");
        File.Delete(config);
        HubCache.Link(Path.Combine(_hub.RepoDir("org/sd"), "blobs", FakeHubServer.GitSha1(files["unet/config.json"])), config);
        var unetDir = Path.Combine(ok.Path, "unet");
        Directory.Move(unetDir, unetDir + ".real");
        Directory.CreateSymbolicLink(unetDir, outside);
        await Refused(() => HubModelResolver.ResolveAsync("org/sd", _hub.Options(offline: true)), HubErrorKind.UnsafeName, "folder link");
        Directory.Delete(unetDir);
        Directory.Move(unetDir + ".real", unetDir);
        Assert.Equal(ok.Path, (await HubModelResolver.ResolveAsync("org/sd", _hub.Options(offline: true))).Path);

        // 6. Ids and revisions given on the command line.
        string[] badIds = ["a/../b", "../x/y", "a/b@..", "a/b@../../x", "a/b/../../c", "a--b/c", "-a/b", "a/b.git", "a/b@", "a/b@x\\y", "/a/b", "a/b/", "a/b@/x", "a/b@x//y", "a b/c"];
        foreach (var id in badIds)
        {
            Assert.False(HubModelId.TryParse(id, out _, out var why), id);
            Assert.False(string.IsNullOrEmpty(why));
            await Refused(() => HubModelResolver.ResolveAsync(id, _hub.Options()), HubErrorKind.UnsafeName, $"id {id}");
        }

        // Nothing was ever written outside the cache folder.
        Assert.Equal(["secret.json"], Directory.GetFileSystemEntries(outside).Select(Path.GetFileName));
        Assert.Equal(["cache", "outside"], Directory.GetFileSystemEntries(_hub.Dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        output.WriteLine($"hub fuzz: {_cases} hostile inputs, each one one-line error");
        Console.WriteLine($"hub fuzz: {_cases} hostile inputs, each one one-line error");
        Assert.True(_cases >= 74, $"{_cases} cases");
    }
}
