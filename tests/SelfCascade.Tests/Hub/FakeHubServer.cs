using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace SelfCascade.Tests.Hub;

/// <summary>One repository the fake hub serves: files by path, the commit, and branch/tag names pointing at it.</summary>
public sealed class FakeRepo(string commit, IReadOnlyDictionary<string, byte[]> files)
{
    public string Commit { get; } = commit;
    public IReadOnlyDictionary<string, byte[]> Files { get; } = files;
    public HashSet<string> Revisions { get; } = new(StringComparer.Ordinal) { "main" };
}

/// <summary>A request the fake hub saw (for assertions on Range and Authorization headers).</summary>
public sealed record FakeRequest(string Method, string Path, string? Range, string? Authorization);

/// <summary>
/// A real HTTP server on 127.0.0.1 (Kestrel, random port) speaking the hub's protocol as huggingface_hub sees it:
/// GET /api/models/{repo}/revision/{rev} (sha + siblings), HEAD/GET /{repo}/resolve/{rev}/{path} with X-Repo-Commit,
/// ETag = git blob sha1 for regular files, and for LFS files (`.safetensors`) a 302 to a CDN path on another host
/// name (localhost) with X-Linked-Etag = sha256 and X-Linked-Size; 401 without the right token, 404 with
/// X-Error-Code RepoNotFound / RevisionNotFound / EntryNotFound, 307 (relative) for a renamed repository, Range
/// requests on the CDN, and injected faults: a connection dropped mid-body, a corrupted body, a hostile listing or
/// headers.
/// </summary>
public sealed class FakeHubServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, FakeRepo> _repos = new(StringComparer.Ordinal);

    public string Endpoint { get; }
    public int Port { get; }
    public ConcurrentQueue<FakeRequest> Requests { get; } = new();

    /// <summary>When set, every hub request (not the CDN) needs `Authorization: Bearer {token}`.</summary>
    public string? RequiredToken { get; set; }
    /// <summary>Old repo id → new one: resolve URLs answer 307 with a relative Location.</summary>
    public ConcurrentDictionary<string, string> Renamed { get; } = new(StringComparer.Ordinal);
    /// <summary>CDN bodies for these repo paths are cut after the given byte count (connection aborted), once each.</summary>
    public ConcurrentDictionary<string, long> DropOnceAfter { get; } = new(StringComparer.Ordinal);
    /// <summary>CDN bodies for these repo paths have one byte flipped (headers still announce the true sha256).</summary>
    public ConcurrentDictionary<string, bool> Corrupt { get; } = new(StringComparer.Ordinal);
    /// <summary>Replaces the listing JSON (hostile listings).</summary>
    public Func<string, string>? ListingOverride { get; set; }
    /// <summary>Replaces headers of resolve answers (hostile ETag / commit).</summary>
    public Action<string, IHeaderDictionary>? HeaderOverride { get; set; }

    private FakeHubServer(WebApplication app, int port)
    {
        _app = app; Port = port; Endpoint = $"http://127.0.0.1:{port}";
    }

    public static async Task<FakeHubServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        FakeHubServer? server = null;
        app.Run(ctx => server!.HandleAsync(ctx));
        await app.StartAsync();
        var port = new Uri(app.Urls.First()).Port;
        server = new FakeHubServer(app, port);
        return server;
    }

    public FakeRepo Add(string repoId, string commit, IReadOnlyDictionary<string, byte[]> files)
    {
        var repo = new FakeRepo(commit, files);
        _repos[repoId] = repo;
        return repo;
    }

    public int Count(string method, string pathContains) => Requests.Count(r => r.Method == method && r.Path.Contains(pathContains, StringComparison.Ordinal));

    public static bool IsLfs(string path) => path.EndsWith(".safetensors", StringComparison.Ordinal);
    public static string Sha256(byte[] d) => Convert.ToHexStringLower(SHA256.HashData(d));
    public static string GitSha1(byte[] d) => Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {d.Length}\0"), .. d]));

    private async Task HandleAsync(HttpContext ctx)
    {
        var path = Uri.UnescapeDataString(ctx.Request.Path.Value ?? "");
        Requests.Enqueue(new FakeRequest(ctx.Request.Method, path, ctx.Request.Headers.Range.FirstOrDefault(), ctx.Request.Headers.Authorization.FirstOrDefault()));
        bool head = HttpMethods.IsHead(ctx.Request.Method);
        if (path.StartsWith("/cdn/", StringComparison.Ordinal)) { await CdnAsync(ctx, path[5..], head); return; }
        if (RequiredToken is not null && ctx.Request.Headers.Authorization.FirstOrDefault() != "Bearer " + RequiredToken)
        {
            ctx.Response.StatusCode = 401;
            ctx.Response.Headers["X-Error-Message"] = "Invalid username or password.";
            return;
        }
        const string api = "/api/models/";
        if (path.StartsWith(api, StringComparison.Ordinal))
        {
            var rest = path[api.Length..];
            var at = rest.IndexOf("/revision/", StringComparison.Ordinal);
            if (at < 0) { ctx.Response.StatusCode = 404; return; }
            var repoId = rest[..at];
            var rev = rest[(at + "/revision/".Length)..];
            if (!_repos.TryGetValue(repoId, out var repo)) { Error(ctx, 404, "RepoNotFound"); return; }
            if (!repo.Revisions.Contains(rev) && rev != repo.Commit) { Error(ctx, 404, "RevisionNotFound"); return; }
            var json = JsonSerializer.Serialize(new
            {
                id = repoId, sha = repo.Commit, @private = false, downloads = 0, likes = 0, tags = Array.Empty<string>(),
                siblings = repo.Files.Keys.Select(f => new { rfilename = f }),
            });
            if (ListingOverride is not null) json = ListingOverride(json);
            ctx.Response.ContentType = "application/json";
            await ctx.Response.WriteAsync(json);
            return;
        }
        var resolve = path.IndexOf("/resolve/", StringComparison.Ordinal);
        if (resolve > 0)
        {
            var repoId = path[1..resolve];
            if (Renamed.TryGetValue(repoId, out var newId))
            {
                ctx.Response.StatusCode = 307;
                ctx.Response.Headers.Location = ctx.Request.Path.Value!.Replace("/" + repoId + "/", "/" + newId + "/", StringComparison.Ordinal);
                return;
            }
            var rest = path[(resolve + "/resolve/".Length)..];
            if (!_repos.TryGetValue(repoId, out var repo)) { Error(ctx, 404, "RepoNotFound"); return; }
            // Revisions here are plain names or the commit (the client escapes '/', so '/' separates the file).
            var slash = rest.IndexOf('/');
            var rev = rest[..slash];
            var file = rest[(slash + 1)..];
            if (!repo.Revisions.Contains(rev) && rev != repo.Commit) { Error(ctx, 404, "RevisionNotFound"); return; }
            if (!repo.Files.TryGetValue(file, out var data))
            {
                ctx.Response.Headers["X-Repo-Commit"] = repo.Commit;
                Error(ctx, 404, "EntryNotFound");
                return;
            }
            ctx.Response.Headers["X-Repo-Commit"] = repo.Commit;
            if (IsLfs(file))
            {
                ctx.Response.StatusCode = 302;
                ctx.Response.Headers["X-Linked-Etag"] = $"\"{Sha256(data)}\"";
                ctx.Response.Headers["X-Linked-Size"] = data.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
                ctx.Response.Headers.ETag = $"\"{GitSha1([.. data.Take(16)])}\"";
                ctx.Response.Headers.Location = $"http://localhost:{Port}/cdn/{repoId}/{file}?sig=x";
                HeaderOverride?.Invoke(file, ctx.Response.Headers);
                return;
            }
            ctx.Response.Headers.ETag = $"\"{GitSha1(data)}\"";
            ctx.Response.ContentLength = data.Length;
            HeaderOverride?.Invoke(file, ctx.Response.Headers);
            if (!head) await ctx.Response.Body.WriteAsync(data);
            return;
        }
        ctx.Response.StatusCode = 404;
    }

    private async Task CdnAsync(HttpContext ctx, string rest, bool head)
    {
        // /cdn/{org}/{name}/{path}: signed URLs need no token, and must not get one.
        var parts = rest.Split('/', 3);
        if (parts.Length < 3 || !_repos.TryGetValue(parts[0] + "/" + parts[1], out var repo) || !repo.Files.TryGetValue(parts[2], out var data))
        {
            ctx.Response.StatusCode = 404; return;
        }
        var file = parts[2];
        if (Corrupt.ContainsKey(file)) { data = (byte[])data.Clone(); data[data.Length / 2] ^= 0x5a; }
        long from = 0;
        var range = ctx.Request.Headers.Range.FirstOrDefault();
        if (range is not null && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
        {
            from = long.Parse(range[6..^1], System.Globalization.CultureInfo.InvariantCulture);
            if (from >= data.Length) { ctx.Response.StatusCode = 416; return; }
            ctx.Response.StatusCode = 206;
            ctx.Response.Headers.ContentRange = $"bytes {from}-{data.Length - 1}/{data.Length}";
        }
        ctx.Response.ContentLength = data.Length - from;
        if (head) return;
        if (DropOnceAfter.TryRemove(file, out var cut) && cut > from)
        {
            await ctx.Response.Body.WriteAsync(data.AsMemory((int)from, (int)(cut - from)));
            await ctx.Response.Body.FlushAsync();
            // Give the transport time to put the bytes on the wire: Abort drops output still queued in Kestrel.
            await Task.Delay(300);
            ctx.Abort();
            return;
        }
        await ctx.Response.Body.WriteAsync(data.AsMemory((int)from));
    }

    private static void Error(HttpContext ctx, int status, string code)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.Headers["X-Error-Code"] = code;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
