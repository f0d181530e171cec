using SelfCascade.Checkpoints.Hub;

namespace SelfCascade.Tests.Hub;

/// <summary>HubModelResolver against the loopback fake hub: selection, layout, resume, checksum, auth, offline.</summary>
public sealed class HubResolverTests : IAsyncLifetime
{
    private HubTestContext _hub = null!;
    public async Task InitializeAsync() => _hub = await HubTestContext.StartAsync();
    public async Task DisposeAsync() => await _hub.DisposeAsync();

    private static readonly string[] ExpectedPlain =
    [
        "model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json", "text_encoder/model.safetensors",
        "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
        "unet/config.json", "unet/diffusion_pytorch_model.safetensors", "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
    ];

    [Fact]
    public async Task Downloads_only_what_the_pipeline_needs_into_the_huggingface_hub_layout_then_needs_no_network()
    {
        var commit = HubTestContext.Commit("a");
        var files = HubTestContext.Distracting();
        _hub.Server.Add("org/sd", commit, files);
        var reports = new List<HubDownloadProgress>();
        var r = await HubModelResolver.ResolveAsync("org/sd", _hub.Options(progress: new SyncProgress(reports)));

        Assert.Equal(HubModelKind.DiffusersFolder, r.Kind);
        Assert.Equal(commit, r.Commit);
        Assert.Equal(Path.Combine(_hub.RepoDir("org/sd"), "snapshots", commit), r.Path);
        Assert.Equal(ExpectedPlain, _hub.SnapshotFiles("org/sd", commit));
        // Identical contents share one blob (several configs are "{}"): each distinct blob is fetched once.
        Assert.Equal(ExpectedPlain.Select(f => files[f]).Select(Convert.ToBase64String).Distinct().Count(), r.FilesDownloaded);
        Assert.Equal(commit, File.ReadAllText(Path.Combine(_hub.RepoDir("org/sd"), "refs", "main")));
        foreach (var f in ExpectedPlain)
        {
            // Relative links into blobs/{etag}: git sha1 for regular files, sha256 for LFS ones (huggingface_hub's layout).
            var link = Path.Combine(r.Path, f);
            var etag = FakeHubServer.IsLfs(f) ? FakeHubServer.Sha256(files[f]) : FakeHubServer.GitSha1(files[f]);
            Assert.Equal(string.Concat(Enumerable.Repeat("../", f.Count(c => c == '/') + 2)) + "blobs/" + etag, new FileInfo(link).LinkTarget);
            Assert.Equal(files[f], File.ReadAllBytes(link));
        }
        Assert.Empty(Directory.GetFiles(Path.Combine(_hub.RepoDir("org/sd"), "blobs"), "*.incomplete"));
        Assert.Equal(0, _hub.Server.Count("GET", ".bin") + _hub.Server.Count("GET", ".ckpt") + _hub.Server.Count("GET", ".py") + _hub.Server.Count("GET", "safety_checker"));
        // Progress: every file reported complete, bytes reaching the announced total.
        Assert.Equal(r.FilesDownloaded, reports.Count(p => p.Completed));
        Assert.All(reports.Where(p => p.Completed), p => Assert.Equal(p.TotalBytes, p.Bytes));
        Assert.Contains(reports, p => p.File == "unet/diffusion_pytorch_model.safetensors" && p.Completed && p.Bytes == 40_000 && p.FileIndex > 1 && p.FileCount == ExpectedPlain.Length);

        int before = _hub.Server.Requests.Count;
        var again = await HubModelResolver.ResolveAsync("org/sd", _hub.Options());
        Assert.Equal(r.Path, again.Path);
        Assert.True(again.FromCacheOnly);
        Assert.Equal(before, _hub.Server.Requests.Count); // served from the cache: no request at all
    }

    [Fact]
    public async Task Variant_fp16_takes_the_fp16_files_where_a_component_has_them()
    {
        var commit = HubTestContext.Commit("v");
        _hub.Server.Add("org/sd", commit, HubTestContext.Distracting());
        var r = await HubModelResolver.ResolveAsync("org/sd", _hub.Options(variant: "fp16"));
        var got = _hub.SnapshotFiles("org/sd", commit);
        Assert.Contains("unet/diffusion_pytorch_model.fp16.safetensors", got);
        Assert.DoesNotContain("unet/diffusion_pytorch_model.safetensors", got);
        Assert.Contains("vae/diffusion_pytorch_model.safetensors", got); // no fp16 for the VAE: its plain weights
        Assert.Equal(ExpectedPlain.Length, got.Count);
        // The loader picks the same files from that folder (per-folder variant fallback, as diffusers' model_variants).
        Assert.Equal(["diffusion_pytorch_model.fp16.safetensors"], SelfCascade.IO.WeightLoader.ResolveWeightFiles(Path.Combine(r.Path, "unet"), "fp16").Select(Path.GetFileName));
        Assert.Equal(["diffusion_pytorch_model.safetensors"], SelfCascade.IO.WeightLoader.ResolveWeightFiles(Path.Combine(r.Path, "vae"), "fp16").Select(Path.GetFileName));
        // Offline afterwards: the same folder, although the VAE has no fp16 file.
        var off = await HubModelResolver.ResolveAsync("org/sd", _hub.Options(variant: "fp16", offline: true));
        Assert.Equal(r.Path, off.Path);
    }

    [Fact]
    public async Task A_dropped_transfer_stays_incomplete_outside_snapshots_and_the_next_call_resumes_it_with_a_range()
    {
        var commit = HubTestContext.Commit("drop");
        var files = HubTestContext.Distracting();
        _hub.Server.Add("org/sd", commit, files);
        const string unet = "unet/diffusion_pytorch_model.safetensors";
        _hub.Server.DropOnceAfter[unet] = 15_000;
        var e = await Assert.ThrowsAsync<HubException>(() => HubModelResolver.ResolveAsync("org/sd", _hub.Options(retries: 0)));
        Assert.Equal(HubErrorKind.Transfer, e.Kind);
        Assert.DoesNotContain('\n', e.Message);
        var incomplete = Path.Combine(_hub.RepoDir("org/sd"), "blobs", FakeHubServer.Sha256(files[unet]) + ".incomplete");
        long kept = new FileInfo(incomplete).Length; // what reached us before the connection dropped (15000 sent)
        Assert.InRange(kept, 1, 15_000);
        Assert.True(e.Message.Contains($"after {kept} of 40000 bytes"), e.Message);
        Assert.DoesNotContain(unet, _hub.SnapshotFiles("org/sd", commit));
        Assert.False(File.Exists(incomplete[..^".incomplete".Length]));

        var r = await HubModelResolver.ResolveAsync("org/sd", _hub.Options(retries: 0));
        Assert.Equal(files[unet], File.ReadAllBytes(Path.Combine(r.Path, unet)));
        Assert.False(File.Exists(incomplete));
        Assert.Contains(_hub.Server.Requests, q => q.Method == "GET" && q.Path.EndsWith(unet, StringComparison.Ordinal) && q.Range == $"bytes={kept}-");
        Assert.Equal(ExpectedPlain, _hub.SnapshotFiles("org/sd", commit));
    }

    [Fact]
    public async Task A_drop_is_resumed_within_one_call_when_retries_are_allowed()
    {
        var commit = HubTestContext.Commit("retry");
        var files = HubTestContext.Distracting();
        _hub.Server.Add("org/sd", commit, files);
        _hub.Server.DropOnceAfter["vae/diffusion_pytorch_model.safetensors"] = 4_096;
        var r = await HubModelResolver.ResolveAsync("org/sd", _hub.Options(retries: 2));
        Assert.Equal(files["vae/diffusion_pytorch_model.safetensors"], File.ReadAllBytes(Path.Combine(r.Path, "vae/diffusion_pytorch_model.safetensors")));
        Assert.Contains(_hub.Server.Requests, q => q.Path.EndsWith("vae/diffusion_pytorch_model.safetensors", StringComparison.Ordinal) && q.Range is string range && range.StartsWith("bytes=", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_corrupted_body_is_refused_by_its_sha256_and_nothing_is_kept()
    {
        var commit = HubTestContext.Commit("bad");
        var files = HubTestContext.Distracting();
        _hub.Server.Add("org/sd", commit, files);
        const string te = "text_encoder/model.safetensors";
        _hub.Server.Corrupt[te] = true;
        var e = await Assert.ThrowsAsync<HubException>(() => HubModelResolver.ResolveAsync("org/sd", _hub.Options(retries: 3)));
        Assert.Equal(HubErrorKind.Integrity, e.Kind);
        Assert.Contains("sha256", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        var blob = Path.Combine(_hub.RepoDir("org/sd"), "blobs", FakeHubServer.Sha256(files[te]));
        Assert.False(File.Exists(blob));
        Assert.False(File.Exists(blob + ".incomplete"));
        Assert.DoesNotContain(te, _hub.SnapshotFiles("org/sd", commit));

        _hub.Server.Corrupt.Clear();
        var r = await HubModelResolver.ResolveAsync("org/sd", _hub.Options());
        Assert.Equal(files[te], File.ReadAllBytes(Path.Combine(r.Path, te)));
    }

    [Fact]
    public async Task Private_repositories_need_the_token_which_never_reaches_the_cdn()
    {
        var commit = HubTestContext.Commit("auth");
        _hub.Server.Add("org/private", commit, HubTestContext.Distracting());
        _hub.Server.RequiredToken = "hf_right";

        var none = await Assert.ThrowsAsync<HubException>(() => HubModelResolver.ResolveAsync("org/private", _hub.Options()));
        Assert.Equal(HubErrorKind.Unauthorized, none.Kind);
        Assert.Contains("401", none.Message);
        Assert.Contains("set HF_TOKEN", none.Message);
        var wrong = await Assert.ThrowsAsync<HubException>(() => HubModelResolver.ResolveAsync("org/private", _hub.Options(token: "hf_wrong")));
        Assert.Equal(HubErrorKind.Unauthorized, wrong.Kind);
        Assert.Contains("refused", wrong.Message);

        // The token from the environment (HF_TOKEN), as huggingface_hub reads it.
        var r = await HubModelResolver.ResolveAsync("org/private", _hub.Options(env: new() { ["HF_TOKEN"] = "hf_right" }));
        Assert.Equal(ExpectedPlain, _hub.SnapshotFiles("org/private", commit));
        Assert.All(_hub.Server.Requests.Where(q => q.Path.StartsWith("/cdn/", StringComparison.Ordinal)), q => Assert.Null(q.Authorization));
        Assert.All(_hub.Server.Requests.Where(q => q.Path.Contains("/resolve/", StringComparison.Ordinal) && q.Authorization is not null), q => Assert.Equal("Bearer hf_right", q.Authorization));
        Assert.True(_hub.Server.Count("GET", "/cdn/") > 0);
    }

    [Fact]
    public async Task Unknown_repository_revision_or_file_is_a_404_named_as_such()
    {
        var commit = HubTestContext.Commit("nf");
        _hub.Server.Add("org/sd", commit, HubTestContext.Distracting());
        var repo = await Assert.ThrowsAsync<HubException>(() => HubModelResolver.ResolveAsync("org/none", _hub.Options()));
        Assert.Equal((HubErrorKind.NotFound, true), (repo.Kind, repo.Message.Contains("repository not found")));
        var rev = await Assert.ThrowsAsync<HubException>(() => HubModelResolver.ResolveAsync("org/sd@v9", _hub.Options()));
        Assert.Equal((HubErrorKind.NotFound, true), (rev.Kind, rev.Message.Contains("revision 'v9' not found")));
        var file = await Assert.ThrowsAsync<HubException>(() => HubModelResolver.ResolveAsync("org/sd/nothing.safetensors", _hub.Options()));
        Assert.Equal((HubErrorKind.NotFound, true), (file.Kind, file.Message.Contains("file not found")));
        Assert.False(Directory.Exists(_hub.RepoDir("org/none")));
    }

    [Fact]
    public async Task Offline_serves_the_cache_and_names_what_is_missing()
    {
        var commit = HubTestContext.Commit("off");
        _hub.Server.Add("org/sd", commit, HubTestContext.Distracting());
        var miss = await Assert.ThrowsAsync<HubException>(() => HubModelResolver.ResolveAsync("org/sd", _hub.Options(offline: true)));
        Assert.Equal(HubErrorKind.OfflineMiss, miss.Kind);
        Assert.Contains("refs/main", miss.Message);
        Assert.Contains(_hub.Cache, miss.Message);
        Assert.Empty(_hub.Server.Requests);

        var online = await HubModelResolver.ResolveAsync("org/sd", _hub.Options());
        int before = _hub.Server.Requests.Count;
        var viaEnv = await HubModelResolver.ResolveAsync("org/sd", _hub.Options(env: new() { ["HF_HUB_OFFLINE"] = "1" }));
        Assert.Equal(online.Path, viaEnv.Path);
        var byCommit = await HubModelResolver.ResolveAsync("org/sd@" + commit, _hub.Options(offline: true));
        Assert.Equal(online.Path, byCommit.Path);
        Assert.Equal(before, _hub.Server.Requests.Count);

        File.Delete(Path.Combine(online.Path, "vae", "diffusion_pytorch_model.safetensors"));
        var partial = await Assert.ThrowsAsync<HubException>(() => HubModelResolver.ResolveAsync("org/sd", _hub.Options(offline: true)));
        Assert.Contains("vae/ weights", partial.Message);
        // Online again: only the missing link is made (the blob is still there: no GET of it).
        int gets = _hub.Server.Count("GET", "vae/diffusion_pytorch_model.safetensors");
        await HubModelResolver.ResolveAsync("org/sd", _hub.Options());
        Assert.Equal(gets, _hub.Server.Count("GET", "vae/diffusion_pytorch_model.safetensors"));
        Assert.True(File.Exists(Path.Combine(online.Path, "vae", "diffusion_pytorch_model.safetensors")));
    }

    [Fact]
    public async Task Repositories_holding_single_file_checkpoints_resolve_to_the_file()
    {
        var one = HubTestContext.Commit("one");
        _hub.Server.Add("org/one", one, new Dictionary<string, byte[]> { ["sd15.safetensors"] = HubTestContext.Bytes(5000, 1), ["README.md"] = [1], ["sd15.ckpt"] = [2] });
        var r = await HubModelResolver.ResolveAsync("org/one", _hub.Options());
        Assert.Equal(HubModelKind.SingleFile, r.Kind);
        Assert.Equal(Path.Combine(_hub.RepoDir("org/one"), "snapshots", one, "sd15.safetensors"), r.Path);
        Assert.Equal(["sd15.safetensors"], _hub.SnapshotFiles("org/one", one));
        Assert.Equal(r.Path, (await HubModelResolver.ResolveAsync("org/one", _hub.Options(offline: true))).Path);

        var two = HubTestContext.Commit("two");
        _hub.Server.Add("org/two", two, new Dictionary<string, byte[]> { ["a.safetensors"] = [1, 2], ["sub/b.safetensors"] = [3], ["c.safetensors"] = [4] });
        var e = await Assert.ThrowsAsync<HubException>(() => HubModelResolver.ResolveAsync("org/two", _hub.Options()));
        Assert.Contains("2 checkpoints (a.safetensors, c.safetensors); name one as org/two/FILE", e.Message);
        var named = await HubModelResolver.ResolveAsync("org/two/sub/b.safetensors", _hub.Options());
        Assert.Equal((HubModelKind.SingleFile, "../../../blobs/" + FakeHubServer.Sha256([3])), (named.Kind, new FileInfo(named.Path).LinkTarget));
        Assert.Equal(named.Path, (await HubModelResolver.ResolveAsync("org/two/sub/b.safetensors", _hub.Options(offline: true))).Path);

        // No safetensors at all: the lone .ckpt (for the allow-list unpickler); pickled .bin files are never picked.
        var ckpt = HubTestContext.Commit("ckpt");
        _hub.Server.Add("org/ckpt", ckpt, new Dictionary<string, byte[]> { ["v1.ckpt"] = [7, 7], ["pytorch_lora_weights.bin"] = [8] });
        Assert.Equal("v1.ckpt", Path.GetFileName((await HubModelResolver.ResolveAsync("org/ckpt", _hub.Options())).Path));
        Assert.Equal(["v1.ckpt"], _hub.SnapshotFiles("org/ckpt", ckpt));
    }

    [Fact]
    public async Task A_renamed_repository_relative_redirect_is_followed()
    {
        var commit = HubTestContext.Commit("ren");
        _hub.Server.Add("org/new", commit, new Dictionary<string, byte[]> { ["m.safetensors"] = HubTestContext.Bytes(100, 3) });
        _hub.Server.Renamed["org/old"] = "org/new";
        var r = await HubModelResolver.ResolveAsync("org/old/m.safetensors", _hub.Options());
        Assert.Equal(HubTestContext.Bytes(100, 3), File.ReadAllBytes(r.Path));
        Assert.Contains(_hub.Server.Requests, q => q.Method == "HEAD" && q.Path.StartsWith("/org/new/resolve/", StringComparison.Ordinal));
    }

    [Fact]
    public void Cache_root_follows_huggingface_hub_environment_precedence()
    {
        string Root(params (string, string)[] vars) => HubCache.DefaultRoot(n => vars.FirstOrDefault(v => v.Item1 == n).Item2);
        Assert.Equal("/x/hub-cache", Root(("HF_HUB_CACHE", "/x/hub-cache"), ("HF_HOME", "/y")));
        Assert.Equal("/x/legacy", Root(("HUGGINGFACE_HUB_CACHE", "/x/legacy"), ("HF_HOME", "/y")));
        Assert.Equal("/y/hub", Root(("HF_HOME", "/y"), ("XDG_CACHE_HOME", "/z")));
        Assert.Equal("/z/huggingface/hub", Root(("XDG_CACHE_HOME", "/z")));
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        Assert.Equal(Path.Combine(home, ".cache", "huggingface", "hub"), Root());
        Assert.Equal(Path.Combine(home, "hf", "hub"), Root(("HF_HOME", "~/hf")));
    }

    [Fact]
    public void Hub_ids_parse_with_revision_and_file_path()
    {
        Assert.Equal(new HubModelId("stabilityai/stable-diffusion-2-1-base", "main", null), HubModelId.Parse("stabilityai/stable-diffusion-2-1-base"));
        Assert.Equal(new HubModelId("org/name", "refs/pr/1", null), HubModelId.Parse("org/name@refs/pr/1"));
        Assert.Equal(new HubModelId("org/name", "v1.0", "sub/model.fp16.safetensors"), HubModelId.Parse("org/name/sub/model.fp16.safetensors@v1.0"));
        Assert.Equal("models--org--name", HubModelId.Parse("org/name").CacheFolderName);
        Assert.False(HubModelId.LooksLikeHubId("single"));
        Assert.False(HubModelId.LooksLikeHubId("./models/x"));
        Assert.False(HubModelId.LooksLikeHubId("/abs/path"));
    }

    /// <summary>IProgress that records synchronously (Progress&lt;T&gt; posts to the thread pool).</summary>
    private sealed class SyncProgress(List<HubDownloadProgress> list) : IProgress<HubDownloadProgress>
    {
        public void Report(HubDownloadProgress value) { lock (list) list.Add(value); }
    }
}
