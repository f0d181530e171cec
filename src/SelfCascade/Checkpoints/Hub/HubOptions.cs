namespace SelfCascade.Checkpoints.Hub;

/// <summary>
/// Where and how a hub id is resolved. Unset values come from the environment as huggingface_hub reads it:
/// HF_HUB_CACHE / HF_HOME / XDG_CACHE_HOME (cache), HF_ENDPOINT, HF_TOKEN (else HF_HOME/token), HF_HUB_OFFLINE.
/// </summary>
public sealed record HubOptions
{
    /// <summary>The hub cache folder (default <see cref="HubCache.DefaultRoot"/>).</summary>
    public string? CacheDir { get; init; }

    /// <summary>The hub's base URL (default $HF_ENDPOINT, else https://huggingface.co).</summary>
    public string? Endpoint { get; init; }

    /// <summary>A bearer token for private or gated repositories (default $HF_TOKEN, else the HF_HOME/token file).</summary>
    public string? Token { get; init; }

    /// <summary>Cache only, no network (also when $HF_HUB_OFFLINE is 1/ON/YES/TRUE).</summary>
    public bool Offline { get; init; }

    /// <summary>When false, missing files are an error instead of a download (the network is still used for nothing).</summary>
    public bool AllowDownload { get; init; } = true;

    /// <summary>diffusers weight variant (`fp16` picks `*.fp16.safetensors` where a component has them).</summary>
    public string? Variant { get; init; }

    /// <summary>Per-file download progress.</summary>
    public IProgress<HubDownloadProgress>? Progress { get; init; }

    /// <summary>
    /// The HTTP handler (tests inject one). It must not follow redirects itself: the hub's headers live on the 302,
    /// so redirects are followed here. Default: a SocketsHttpHandler with redirects off.
    /// </summary>
    public HttpMessageHandler? HttpHandler { get; init; }

    /// <summary>How many times a dropped transfer is resumed (with an HTTP Range) within one call.</summary>
    public int MaxRetries { get; init; } = 5;

    /// <summary>The wait before each resume.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Timeout of each metadata request (listing, HEAD) and of each read while downloading.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long to wait for another process downloading the same blob (its lock file).</summary>
    public TimeSpan LockTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Environment lookup (tests pass their own so the machine's HF_* variables cannot leak in).</summary>
    public Func<string, string?> Environment { get; init; } = System.Environment.GetEnvironmentVariable;

    internal string ResolveEndpoint()
    {
        var e = Endpoint ?? Env("HF_ENDPOINT") ?? "https://huggingface.co";
        if (!Uri.TryCreate(e.TrimEnd('/'), UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
            || !string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment))
            throw new ArgumentException($"hub endpoint {HubNames.Show(e)} is not an http(s) URL");
        return uri.ToString().TrimEnd('/');
    }

    internal string? ResolveToken()
    {
        var t = Token ?? Env("HF_TOKEN") ?? Env("HUGGING_FACE_HUB_TOKEN");
        if (t is null)
        {
            var file = Path.Combine(HubCache.HfHome(Environment), "token");
            if (File.Exists(file) && new FileInfo(file).Length < 4096) t = File.ReadAllText(file);
        }
        t = t?.Trim();
        if (string.IsNullOrEmpty(t)) return null;
        if (t.Any(c => c < 0x21 || c > 0x7e)) throw new ArgumentException("the hub token has characters a token cannot have");
        return t;
    }

    internal bool ResolveOffline() => Offline || IsTrue(Env("HF_HUB_OFFLINE")) || IsTrue(Env("TRANSFORMERS_OFFLINE"));

    internal string ResolveCacheDir() => CacheDir is { Length: > 0 } c ? Path.GetFullPath(c) : HubCache.DefaultRoot(Environment);

    private string? Env(string name) => Environment(name) is { Length: > 0 } v ? v : null;

    /// <summary>huggingface_hub's ENV_VARS_TRUE_VALUES.</summary>
    internal static bool IsTrue(string? v) => v is not null && v.Trim().ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE";
}

/// <summary>One file's download progress: bytes so far of the total (null when the hub did not say).</summary>
public sealed record HubDownloadProgress(string RepoId, string File, long Bytes, long? TotalBytes, int FileIndex, int FileCount, bool Completed)
{
    public double Fraction => TotalBytes is > 0 ? Math.Clamp((double)Bytes / TotalBytes.Value, 0, 1) : (Completed ? 1 : 0);

    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{File} {Bytes / 1048576.0:F1}/{(TotalBytes is long t ? (t / 1048576.0).ToString("F1", System.Globalization.CultureInfo.InvariantCulture) : "?")} MiB ({FileIndex}/{FileCount})");
}
