using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;

namespace SelfCascade.Checkpoints.Hub;

/// <summary>A repository's file list at one commit (GET /api/models/{repo}/revision/{rev}).</summary>
public sealed record HubRepoListing(string Commit, IReadOnlyList<string> Files);

/// <summary>What HEAD /{repo}/resolve/{rev}/{path} says about one file (huggingface_hub's HfFileMetadata).</summary>
public sealed record HubFileMetadata(string Commit, string Etag, long? Size, Uri Location);

/// <summary>
/// The hub's HTTP API as huggingface_hub v0.22 uses it: the revision listing, HEAD on resolve URLs with
/// redirects followed by hand (the X-Repo-Commit / X-Linked-Etag / X-Linked-Size headers live on the 302; relative
/// redirects, a renamed repository, are followed), and resumable GETs (HTTP Range) whose bytes are counted and
/// hashed on the way. The bearer token goes to the endpoint's host only, never to a CDN it redirects to.
/// </summary>
public sealed class HubHttpClient : IDisposable
{
    /// <summary>Largest listing JSON read (the biggest real repositories list a few MB).</summary>
    public const int MaxListingBytes = 32 << 20;
    /// <summary>Most files a listing may name.</summary>
    public const int MaxListingFiles = 200_000;
    private const int MaxRedirects = 10;
    private const int BufferBytes = 1 << 20;

    private readonly HttpClient _http;
    private readonly Uri _endpoint;
    private readonly string? _token;
    private readonly HubOptions _options;

    public HubHttpClient(HubOptions options)
    {
        _options = options;
        _endpoint = new Uri(options.ResolveEndpoint() + "/");
        _token = options.ResolveToken();
        var handler = options.HttpHandler ?? new SocketsHttpHandler
        {
            AllowAutoRedirect = false, AutomaticDecompression = DecompressionMethods.None, ConnectTimeout = options.RequestTimeout,
        };
        _http = new HttpClient(handler, disposeHandler: options.HttpHandler is null) { Timeout = System.Threading.Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("SelfCascade", "1.0"));
    }

    public string Endpoint => _endpoint.ToString().TrimEnd('/');

    public void Dispose() => _http.Dispose();

    /// <summary>GET {endpoint}/api/models/{repo}/revision/{rev}: the commit (`sha`) and every file (`siblings[].rfilename`), each validated.</summary>
    public async Task<HubRepoListing> ListAsync(HubModelId id, CancellationToken ct)
    {
        var url = new Uri(_endpoint, $"api/models/{id.RepoId}/revision/{Uri.EscapeDataString(id.Revision)}");
        using var timeout = Timeout(ct);
        using var resp = await SendAsync(HttpMethod.Get, url, 0, followAbsolute: false, timeout.Token, ct).ConfigureAwait(false);
        if (!resp.IsSuccessStatusCode) throw ErrorFor(resp, id, null);
        var body = await ReadLimitedAsync(resp, MaxListingBytes, $"{id}: listing", timeout.Token).ConfigureAwait(false);
        var source = $"{id}: hub listing";
        JsonDocument doc;
        try { doc = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 32 }); }
        catch (JsonException e) { throw new HubException(HubErrorKind.Protocol, $"{source}: not valid JSON ({e.Message})"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("sha", out var sha) || sha.ValueKind != JsonValueKind.String)
                throw new HubException(HubErrorKind.Protocol, $"{source}: no 'sha' (commit) in the answer");
            var commit = HubNames.RequireCommit(sha.GetString(), $"{source} sha");
            if (!root.TryGetProperty("siblings", out var sib) || sib.ValueKind != JsonValueKind.Array)
                throw new HubException(HubErrorKind.Protocol, $"{source}: no 'siblings' (file list) in the answer");
            if (sib.GetArrayLength() > MaxListingFiles)
                throw new HubException(HubErrorKind.Protocol, $"{source}: {sib.GetArrayLength()} files, more than {MaxListingFiles}");
            var files = new List<string>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var s in sib.EnumerateArray())
            {
                if (s.ValueKind != JsonValueKind.Object || !s.TryGetProperty("rfilename", out var f) || f.ValueKind != JsonValueKind.String)
                    throw new HubException(HubErrorKind.Protocol, $"{source}: a sibling without 'rfilename'");
                var name = HubNames.RequireRepoPath(f.GetString(), source);
                if (!seen.Add(name)) throw new HubException(HubErrorKind.UnsafeName, $"{source}: file {HubNames.Show(name)} listed twice");
                files.Add(name);
            }
            return new HubRepoListing(commit, files);
        }
    }

    /// <summary>HEAD {endpoint}/{repo}/resolve/{rev}/{path}: commit, ETag (blob name), size and where to GET it.</summary>
    public async Task<HubFileMetadata> HeadAsync(HubModelId id, string revision, string path, CancellationToken ct)
    {
        HubNames.RequireRepoPath(path, id.RepoId);
        var url = ResolveUrl(id, revision, path);
        using var timeout = Timeout(ct);
        using var resp = await SendAsync(HttpMethod.Head, url, 0, followAbsolute: false, timeout.Token, ct).ConfigureAwait(false);
        if (!resp.IsSuccessStatusCode && !IsRedirect(resp.StatusCode)) throw ErrorFor(resp, id, path);
        var source = $"{id.RepoId}@{revision}/{path}";
        var commit = HubNames.RequireCommit(Header(resp, "X-Repo-Commit"), $"{source}: X-Repo-Commit");
        var etag = HubNames.NormalizeEtag(Header(resp, "X-Linked-Etag") ?? Header(resp, "ETag"), source);
        var sizeText = Header(resp, "X-Linked-Size") ?? resp.Content.Headers.ContentLength?.ToString(System.Globalization.CultureInfo.InvariantCulture);
        long? size = null;
        if (sizeText is not null)
        {
            if (!long.TryParse(sizeText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var s))
                throw new HubException(HubErrorKind.Protocol, $"{source}: size {HubNames.Show(sizeText)} is not a byte count");
            size = s;
        }
        var location = IsRedirect(resp.StatusCode) && resp.Headers.Location is Uri loc ? new Uri(resp.RequestMessage!.RequestUri!, loc) : resp.RequestMessage!.RequestUri!;
        RequireHttp(location, source);
        return new HubFileMetadata(commit, etag, size, location);
    }

    public Uri ResolveUrl(HubModelId id, string revision, string path) =>
        new(_endpoint, $"{id.RepoId}/resolve/{Uri.EscapeDataString(revision)}/{string.Join('/', path.Split('/').Select(Uri.EscapeDataString))}");

    /// <summary>
    /// Downloads <paramref name="url"/> into <paramref name="incompletePath"/>, continuing a partial file with an HTTP
    /// Range (and after a dropped connection, up to <see cref="HubOptions.MaxRetries"/> times), never writing more
    /// than <paramref name="expectedSize"/>. When <paramref name="expectedSha256"/> is given the bytes' sha256 must
    /// equal it: on a mismatch the partial file is deleted. Returns the bytes fetched by this call.
    /// </summary>
    public async Task<long> DownloadAsync(Uri url, string incompletePath, long? expectedSize, string? expectedSha256, string display,
        Action<long>? progress, CancellationToken ct)
    {
        long fetched = 0;
        var fs = new FileStream(incompletePath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, BufferBytes, useAsync: true);
        using var hash = expectedSha256 is null ? null : IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long have;
        try
        {
            have = fs.Length;
            if (expectedSize is long e0 && have > e0) { fs.SetLength(0); have = 0; }
            if (hash is not null && have > 0) await HashPrefixAsync(fs, have, hash, ct).ConfigureAwait(false);
            fs.Position = have;
            progress?.Invoke(have);
            int failures = 0;
            while (expectedSize is null || have < expectedSize)
            {
                try
                {
                    using var timeout = Timeout(ct);
                    using var resp = await SendAsync(HttpMethod.Get, url, have, followAbsolute: true, timeout.Token, ct).ConfigureAwait(false);
                    if (resp.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && have > 0)
                    {
                        Restart(fs, hash, ref have);
                        continue;
                    }
                    if (!resp.IsSuccessStatusCode) throw ErrorFor(resp, null, display);
                    if (have > 0 && (resp.StatusCode != HttpStatusCode.PartialContent || resp.Content.Headers.ContentRange?.From != have))
                        Restart(fs, hash, ref have); // the server ignored the Range: take the whole body from the start
                    await using var body = await resp.Content.ReadAsStreamAsync(timeout.Token).ConfigureAwait(false);
                    var buffer = new byte[BufferBytes];
                    while (true)
                    {
                        timeout.CancelAfter(_options.RequestTimeout);
                        int n = await body.ReadAsync(buffer, timeout.Token).ConfigureAwait(false);
                        if (n == 0) break;
                        if (expectedSize is long e1 && have + n > e1)
                        {
                            fs.SetLength(0);
                            throw new HubException(HubErrorKind.Integrity, $"{display}: the server sent more than the {e1} bytes it announced; the download was discarded");
                        }
                        await fs.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                        hash?.AppendData(buffer, 0, n);
                        have += n; fetched += n; failures = 0;
                        progress?.Invoke(have);
                    }
                    if (expectedSize is null) break;
                    if (have < expectedSize) throw new IOException($"the connection closed after {have} of {expectedSize} bytes");
                }
                catch (Exception ex) when (ex is (IOException or HttpRequestException or OperationCanceledException) and not HubException && !ct.IsCancellationRequested)
                {
                    await fs.FlushAsync(ct).ConfigureAwait(false);
                    if (failures++ >= _options.MaxRetries)
                        throw new HubException(HubErrorKind.Transfer,
                            $"{display}: download interrupted after {have} of {expectedSize?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"} bytes ({OneLine(ex)}); the partial file is kept and the next run resumes it", ex);
                    await Task.Delay(_options.RetryDelay, ct).ConfigureAwait(false);
                }
            }
            await fs.FlushAsync(ct).ConfigureAwait(false);
        }
        finally { await fs.DisposeAsync().ConfigureAwait(false); }

        if (hash is not null)
        {
            var actual = Convert.ToHexStringLower(hash.GetHashAndReset());
            if (actual != expectedSha256)
            {
                File.Delete(incompletePath);
                throw new HubException(HubErrorKind.Integrity,
                    $"{display}: sha256 {actual} does not match the hub's {expectedSha256} (X-Linked-Etag); the download was discarded");
            }
        }
        return fetched;
    }

    private static void Restart(FileStream fs, IncrementalHash? hash, ref long have)
    {
        fs.SetLength(0);
        fs.Position = 0;
        hash?.GetHashAndReset();
        have = 0;
    }

    private static async Task HashPrefixAsync(FileStream fs, long length, IncrementalHash hash, CancellationToken ct)
    {
        fs.Position = 0;
        var buffer = new byte[BufferBytes];
        long left = length;
        while (left > 0)
        {
            int n = await fs.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), ct).ConfigureAwait(false);
            if (n == 0) throw new IOException($"{fs.Name}: shorter than expected while resuming");
            hash.AppendData(buffer, 0, n);
            left -= n;
        }
    }

    /// <summary>
    /// Sends one request, following relative redirects (and, for a GET, absolute ones too, e.g. to the CDN) by hand,
    /// with the token only on the endpoint's own host and a Range from <paramref name="rangeFrom"/> when positive.
    /// </summary>
    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri url, long rangeFrom, bool followAbsolute, CancellationToken timeout, CancellationToken ct)
    {
        for (int hop = 0; hop <= MaxRedirects; hop++)
        {
            RequireHttp(url, "request");
            using var req = new HttpRequestMessage(method, url);
            req.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));
            if (_token is not null && SameOrigin(url, _endpoint)) req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
            if (rangeFrom > 0) req.Headers.Range = new RangeHeaderValue(rangeFrom, null);
            HttpResponseMessage resp;
            try { resp = await _http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, timeout).ConfigureAwait(false); }
            catch (Exception e) when (e is HttpRequestException || (e is OperationCanceledException && !ct.IsCancellationRequested))
            {
                var why = e is OperationCanceledException ? $"no answer within {_options.RequestTimeout.TotalSeconds:F0} s" : OneLine(e);
                // A download retries (and resumes) by itself; metadata requests fail at once with one line.
                if (followAbsolute) throw new HttpRequestException($"{method} {url.GetLeftPart(UriPartial.Path)}: {why}", e);
                throw new HubException(HubErrorKind.Transfer, $"{url.GetLeftPart(UriPartial.Authority)}: cannot reach the hub ({why}); set HF_HUB_OFFLINE=1 to use the cache only", e);
            }
            if (!IsRedirect(resp.StatusCode) || resp.Headers.Location is not Uri loc) return resp;
            bool relative = !loc.IsAbsoluteUri;
            if (!relative && !followAbsolute) return resp;
            var next = new Uri(url, loc);
            resp.Dispose();
            url = next;
        }
        throw new HubException(HubErrorKind.Protocol, $"{url}: more than {MaxRedirects} redirects");
    }

    private static bool IsRedirect(HttpStatusCode c) => (int)c is >= 300 and <= 399;

    private static bool SameOrigin(Uri a, Uri b) =>
        Uri.Compare(a, b, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0;

    private static void RequireHttp(Uri url, string source)
    {
        if (!url.IsAbsoluteUri || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
            throw new HubException(HubErrorKind.UnsafeName, $"{source}: {HubNames.Show(url.ToString())} is not an http(s) URL");
    }

    private CancellationTokenSource Timeout(CancellationToken ct)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(_options.RequestTimeout);
        return cts;
    }

    private static async Task<byte[]> ReadLimitedAsync(HttpResponseMessage resp, int limit, string source, CancellationToken ct)
    {
        if (resp.Content.Headers.ContentLength > limit) throw new HubException(HubErrorKind.Protocol, $"{source}: answer larger than {limit} bytes");
        await using var s = await resp.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        using var ms = new MemoryStream();
        var buffer = new byte[81920];
        int n;
        while ((n = await s.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
        {
            if (ms.Length + n > limit) throw new HubException(HubErrorKind.Protocol, $"{source}: answer larger than {limit} bytes");
            ms.Write(buffer, 0, n);
        }
        return ms.ToArray();
    }

    private static string? Header(HttpResponseMessage r, string name) =>
        r.Headers.TryGetValues(name, out var v) ? v.FirstOrDefault() : r.Content.Headers.TryGetValues(name, out var c) ? c.FirstOrDefault() : null;

    /// <summary>The hub's status codes and X-Error-Code header (huggingface_hub's hf_raise_for_status) as one line.</summary>
    private HubException ErrorFor(HttpResponseMessage r, HubModelId? id, string? file)
    {
        int code = (int)r.StatusCode;
        var errorCode = Header(r, "X-Error-Code");
        var what = id is null ? file ?? "download" : file is null ? id.ToString() : $"{id.RepoId}@{id.Revision}: {file}";
        var serverSays = Header(r, "X-Error-Message") is string m ? $" (hub: {HubNames.Show(m)})" : "";
        if (code is 401 or 403 || errorCode == "GatedRepo")
            return new HubException(HubErrorKind.Unauthorized, $"{what}: HTTP {code}: the repository is private, gated or does not exist; "
                + (_token is null ? "set HF_TOKEN to a token that has access" : "the token given (HF_TOKEN) was refused") + serverSays);
        if (errorCode == "RevisionNotFound" && id is not null)
            return new HubException(HubErrorKind.NotFound, $"{id.RepoId}: revision '{id.Revision}' not found{serverSays}");
        if (errorCode == "EntryNotFound")
            return new HubException(HubErrorKind.NotFound, $"{what}: file not found in the repository{serverSays}");
        if (errorCode == "RepoNotFound" || (code == 404 && id is not null && file is null))
            return new HubException(HubErrorKind.NotFound, $"{id?.RepoId ?? what}: repository not found at {Endpoint}{serverSays}");
        if (code == 404) return new HubException(HubErrorKind.NotFound, $"{what}: HTTP 404 not found{serverSays}");
        return new HubException(code >= 500 ? HubErrorKind.Transfer : HubErrorKind.Protocol, $"{what}: HTTP {code} {r.ReasonPhrase}{serverSays}");
    }

    private static string OneLine(Exception e) => e.Message.Replace('\n', ' ').Replace('\r', ' ');
}
