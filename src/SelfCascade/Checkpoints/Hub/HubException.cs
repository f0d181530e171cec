namespace SelfCascade.Checkpoints.Hub;

/// <summary>What went wrong while resolving a hub id, so callers (and tests) can tell the cases apart.</summary>
public enum HubErrorKind
{
    /// <summary>A repository, revision or file the hub (or the cache, offline) does not have.</summary>
    NotFound,
    /// <summary>401/403: a private or gated repository without a (valid) token.</summary>
    Unauthorized,
    /// <summary>Offline (HF_HUB_OFFLINE=1, --offline) and the cache lacks what is needed.</summary>
    OfflineMiss,
    /// <summary>A name read from disk or HTTP (refs file, file listing, ETag, commit) that is not safe to use.</summary>
    UnsafeName,
    /// <summary>A download whose size or sha256 does not match what the hub announced; it was discarded.</summary>
    Integrity,
    /// <summary>The connection failed or dropped; the partial download is kept and resumed next time.</summary>
    Transfer,
    /// <summary>The hub answered something this client cannot use (no commit header, bad JSON, no safetensors).</summary>
    Protocol,
}

/// <summary>
/// A one-line error about a hub id. An <see cref="IOException"/>, so callers that already report I/O failures
/// (the CLI's one-line `error:` policy) report these too.
/// </summary>
public sealed class HubException(HubErrorKind kind, string message, Exception? inner = null) : IOException(message, inner)
{
    public HubErrorKind Kind { get; } = kind;
}
