namespace SelfCascade.Checkpoints.Hub;

/// <summary>What a hub id resolved to.</summary>
public enum HubModelKind
{
    /// <summary>A diffusers folder (model_index.json + component folders): StableDiffusionPipeline.FromPretrained opens it.</summary>
    DiffusersFolder,
    /// <summary>One single-file checkpoint (original CompVis/Stability layout) inside the snapshot.</summary>
    SingleFile,
}

/// <summary>A resolved hub id: the local path (snapshot folder or file), the commit, and what this call downloaded.</summary>
public sealed record HubResolution(HubModelId Id, string Path, HubModelKind Kind, string Commit, int FilesDownloaded, long BytesDownloaded)
{
    public bool FromCacheOnly => FilesDownloaded == 0;
}

/// <summary>
/// Turns `org/name[@revision]` (or `org/name/file.safetensors[@revision]`) into a local path in the standard hub
/// cache, shared with huggingface_hub/diffusers: the cache is read first and, when it holds everything the
/// pipeline needs, no request is made; otherwise (network allowed, not offline) the missing files are downloaded
/// into the same layout. Only verified blobs are linked into snapshots/: a partial download stays
/// `blobs/{etag}.incomplete` (resumed next time) and a download whose sha256 differs from X-Linked-Etag is deleted.
/// </summary>
public static class HubModelResolver
{
    /// <summary>Synchronous <see cref="ResolveAsync"/> (the CLI and other non-async callers).</summary>
    public static HubResolution Resolve(string spec, HubOptions? options = null, CancellationToken ct = default) =>
        Task.Run(() => ResolveAsync(spec, options, ct), ct).GetAwaiter().GetResult();

    public static async Task<HubResolution> ResolveAsync(string spec, HubOptions? options = null, CancellationToken ct = default)
    {
        options ??= new HubOptions();
        var id = HubModelId.Parse(spec);
        var variant = options.Variant;
        if (variant is not null && !System.Text.RegularExpressions.Regex.IsMatch(variant, "^[A-Za-z0-9_]{1,32}$"))
            throw new ArgumentException($"variant {HubNames.Show(variant)}: letters, digits and '_' only (e.g. fp16)");
        var cache = new HubCache(options.ResolveCacheDir());
        bool offline = options.ResolveOffline();

        var hit = FromCache(id, cache, variant, acceptFallback: offline || !options.AllowDownload, out var missing);
        if (hit is not null) return hit;
        if (offline)
            throw new HubException(HubErrorKind.OfflineMiss,
                $"{id}: offline (HF_HUB_OFFLINE / --offline) and the hub cache {cache.Root} lacks {missing}");
        if (!options.AllowDownload)
            throw new HubException(HubErrorKind.NotFound, $"{id}: downloads are off and the hub cache {cache.Root} lacks {missing}");

        using var http = new HubHttpClient(options);
        var session = new Download(id, cache, http, options, ct);
        if (id.FilePath is not null)
        {
            var meta = await http.HeadAsync(id, id.Revision, id.FilePath, ct).ConfigureAwait(false);
            cache.WriteRef(id, id.Revision, meta.Commit);
            var file = await session.FetchAsync(meta.Commit, id.FilePath, 1, 1, meta).ConfigureAwait(false);
            return new HubResolution(id, file, HubModelKind.SingleFile, meta.Commit, session.Files, session.Bytes);
        }

        var listing = await http.ListAsync(id, ct).ConfigureAwait(false);
        var commit = listing.Commit;
        cache.WriteRef(id, id.Revision, commit);
        if (!listing.Files.Contains(HubFileSelector.ModelIndex))
        {
            var candidates = HubFileSelector.SingleFileCandidates(listing.Files, variant);
            if (candidates.Count != 1)
                throw new HubException(HubErrorKind.NotFound, candidates.Count == 0
                    ? $"{id}: no model_index.json and no single-file checkpoint at the top of the repository ({Sample(listing.Files)})"
                    : $"{id}: no model_index.json and {candidates.Count} checkpoints ({Sample(candidates)}); name one as {id.RepoId}/FILE");
            var file = await session.FetchAsync(commit, candidates[0], 1, 1, null).ConfigureAwait(false);
            return new HubResolution(id, file, HubModelKind.SingleFile, commit, session.Files, session.Bytes);
        }

        var index = await session.FetchAsync(commit, HubFileSelector.ModelIndex, 1, 1, null).ConfigureAwait(false);
        var components = HubFileSelector.Components(ReadLimited(index, HubFileSelector.MaxIndexBytes), $"{id.RepoId}@{commit}");
        var selected = HubFileSelector.Select(listing.Files, components, variant, $"{id.RepoId}@{commit}");
        for (int i = 0; i < selected.Count; i++)
            await session.FetchAsync(commit, selected[i], i + 1, selected.Count, null).ConfigureAwait(false);
        return new HubResolution(id, cache.SnapshotDir(id, commit), HubModelKind.DiffusersFolder, commit, session.Files, session.Bytes);
    }

    /// <summary>
    /// The cached answer for <paramref name="id"/>, or null with what is missing. A diffusers snapshot counts when
    /// model_index.json and, for every component the pipeline loads, its config and weights (tokenizer and scheduler
    /// files) are there. With a variant asked, a component holding only plain weights may still get the variant
    /// from the hub, so it counts only when <paramref name="acceptFallback"/> (offline: use what there is).
    /// </summary>
    public static HubResolution? FromCache(HubModelId id, HubCache cache, string? variant, bool acceptFallback, out string missing)
    {
        missing = "";
        var commit = cache.ReadCommit(id, id.Revision);
        if (commit is null) { missing = $"refs/{id.Revision} (the revision was never resolved here)"; return null; }
        var snapshot = cache.SnapshotDir(id, commit);
        if (!Directory.Exists(snapshot)) { missing = $"snapshots/{commit}"; return null; }
        if (id.FilePath is not null)
        {
            var file = cache.ExistingEntry(id, commit, id.FilePath);
            if (file is null) { missing = $"snapshots/{commit}/{id.FilePath}"; return null; }
            return new HubResolution(id, file, HubModelKind.SingleFile, commit, 0, 0);
        }
        var index = cache.ExistingEntry(id, commit, HubFileSelector.ModelIndex);
        if (index is null)
        {
            var top = LocalFiles(cache, id, commit, snapshot, "");
            var single = HubFileSelector.SingleFileCandidates(top, variant);
            if (single.Count == 1 && !top.Contains(HubFileSelector.ModelIndex))
                return new HubResolution(id, cache.PointerPath(id, commit, single[0]), HubModelKind.SingleFile, commit, 0, 0);
            missing = $"snapshots/{commit}/{HubFileSelector.ModelIndex}";
            return null;
        }
        var components = HubFileSelector.Components(ReadLimited(index, HubFileSelector.MaxIndexBytes), index);
        var lacks = new List<string>();
        foreach (var comp in components)
        {
            if (HubFileSelector.Unused.Contains(comp)) continue;
            var names = LocalFiles(cache, id, commit, Path.Combine(snapshot, comp), comp + "/");
            if (names.Count == 0) { lacks.Add(comp + "/"); continue; }
            if (names.Contains("config.json"))
            {
                var weights = HubFileSelector.ChooseWeights(names, variant);
                if (weights is null) lacks.Add($"{comp}/ weights");
                else if (variant is not null && !acceptFallback && !weights.Any(w => w.Contains("." + variant, StringComparison.Ordinal)))
                    lacks.Add($"{comp}/ {variant} weights (perhaps)");
            }
            else if (comp.StartsWith("scheduler", StringComparison.Ordinal) && !names.Contains("scheduler_config.json"))
                lacks.Add($"{comp}/scheduler_config.json");
            else if (comp.StartsWith("tokenizer", StringComparison.Ordinal) && !names.Contains("tokenizer.json")
                     && !(names.Contains("vocab.json") && names.Contains("merges.txt")))
                lacks.Add($"{comp}/vocab.json+merges.txt");
        }
        if (lacks.Count > 0) { missing = $"snapshots/{commit}: " + string.Join(", ", lacks); return null; }
        return new HubResolution(id, snapshot, HubModelKind.DiffusersFolder, commit, 0, 0);
    }

    /// <summary>The names of the files present (links resolving into blobs/) directly in one snapshot folder.</summary>
    private static List<string> LocalFiles(HubCache cache, HubModelId id, string commit, string dir, string prefix)
    {
        var list = new List<string>();
        if (!Directory.Exists(dir)) return list;
        foreach (var path in Directory.EnumerateFiles(dir))
        {
            var name = Path.GetFileName(path);
            if (!IsPlainName(name)) continue;
            if (cache.ExistingEntry(id, commit, prefix + name) is not null) list.Add(name);
        }
        return list;
    }

    private static bool IsPlainName(string name)
    {
        try { HubNames.RequireRepoPath(name, "local"); return !name.Contains('/'); }
        catch (HubException) { return false; }
    }

    private static byte[] ReadLimited(string path, int limit)
    {
        var info = new FileInfo(path);
        if (info.Length > limit) throw new HubException(HubErrorKind.Protocol, $"{path}: {info.Length} bytes, more than {limit}");
        return File.ReadAllBytes(path);
    }

    private static string Sample(IEnumerable<string> names)
    {
        var list = names.Take(8).ToList();
        return list.Count == 0 ? "no files" : string.Join(", ", list) + (names.Skip(8).Any() ? ", ..." : "");
    }

    /// <summary>One resolution's downloads: files and bytes fetched, progress, per-blob locks.</summary>
    private sealed class Download(HubModelId id, HubCache cache, HubHttpClient http, HubOptions options, CancellationToken ct)
    {
        public int Files { get; private set; }
        public long Bytes { get; private set; }

        /// <summary>
        /// snapshots/{commit}/{path}, downloaded when absent: HEAD for the blob's ETag, reuse of an existing blob,
        /// else a resumable download into blobs/{etag}.incomplete, checked (size; sha256 for LFS files), moved to
        /// blobs/{etag}, then linked. <paramref name="meta"/> is a HEAD already made.
        /// </summary>
        public async Task<string> FetchAsync(string commit, string path, int index, int count, HubFileMetadata? meta)
        {
            var pointer = cache.PointerPath(id, commit, path);
            if (cache.ExistingEntry(id, commit, path) is not null) return pointer;
            meta ??= await http.HeadAsync(id, commit, path, ct).ConfigureAwait(false);
            if (meta.Commit != commit)
                throw new HubException(HubErrorKind.Protocol, $"{id.RepoId}/{path}: X-Repo-Commit {meta.Commit} is not the listed commit {commit}");
            var blob = cache.BlobPath(id, meta.Etag);
            Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
            var lockPath = cache.LockPath(id, meta.Etag);
            await using (await AcquireLockAsync(lockPath, options.LockTimeout, ct).ConfigureAwait(false))
            {
                if (!BlobUsable(blob, meta.Size))
                {
                    var incomplete = blob + ".incomplete";
                    void Report(long b) => options.Progress?.Report(new HubDownloadProgress(id.RepoId, path, b, meta.Size, index, count, false));
                    var got = await http.DownloadAsync(meta.Location, incomplete, meta.Size, HubNames.IsSha256(meta.Etag) ? meta.Etag : null,
                        $"{id.RepoId}/{path}", Report, ct).ConfigureAwait(false);
                    File.Move(incomplete, blob, overwrite: true);
                    Files++;
                    Bytes += got;
                    options.Progress?.Report(new HubDownloadProgress(id.RepoId, path, new FileInfo(blob).Length, meta.Size, index, count, true));
                }
                HubCache.Link(blob, pointer);
            }
            return pointer;
        }

        /// <summary>A blob already in the cache (another revision's, or Python's) is reused when its size matches.</summary>
        private static bool BlobUsable(string blob, long? size)
        {
            var info = new FileInfo(blob);
            return info.Exists && (size is null || info.Length == size);
        }

        /// <summary>
        /// .locks/models--org--name/{etag}.lock opened exclusively: on Unix .NET takes it with flock, the same lock
        /// huggingface_hub's filelock takes, so concurrent Python and SelfCascade downloads of a blob wait for each other.
        /// </summary>
        private static async Task<FileStream> AcquireLockAsync(string path, TimeSpan timeout, CancellationToken ct)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var deadline = DateTime.UtcNow + timeout;
            while (true)
            {
                try { return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
                catch (IOException) when (DateTime.UtcNow < deadline) { await Task.Delay(200, ct).ConfigureAwait(false); }
                catch (IOException e) { throw new HubException(HubErrorKind.Transfer, $"{path}: still locked by another download after {timeout.TotalSeconds:F0} s", e); }
            }
        }
    }
}
