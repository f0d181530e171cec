using System.Text;
using SelfCascade.Checkpoints.Hub;

namespace SelfCascade.Tests.Hub;

/// <summary>Repositories and options for the hub tests: a temp cache, the fake server, no machine HF_* variables.</summary>
public sealed class HubTestContext : IAsyncDisposable
{
    public FakeHubServer Server { get; }
    public string Dir { get; } = Directory.CreateTempSubdirectory("sc-hub-").FullName;
    public string Cache => Path.Combine(Dir, "cache");

    private HubTestContext(FakeHubServer server) { Server = server; }

    public static async Task<HubTestContext> StartAsync() => new(await FakeHubServer.StartAsync());

    public HubOptions Options(string? token = null, bool offline = false, string? variant = null, int retries = 0,
        IProgress<HubDownloadProgress>? progress = null, Dictionary<string, string>? env = null) => new()
    {
        CacheDir = Cache, Endpoint = Server.Endpoint, Token = token, Offline = offline, Variant = variant, MaxRetries = retries,
        RetryDelay = TimeSpan.FromMilliseconds(10), RequestTimeout = TimeSpan.FromSeconds(20), Progress = progress,
        Environment = name => env is not null && env.TryGetValue(name, out var v) ? v : null,
    };

    public string RepoDir(string repoId) => Path.Combine(Cache, "models--" + repoId.Replace("/", "--"));

    /// <summary>Every file and link under snapshots/, as repo paths.</summary>
    public List<string> SnapshotFiles(string repoId, string commit)
    {
        var dir = Path.Combine(RepoDir(repoId), "snapshots", commit);
        if (!Directory.Exists(dir)) return [];
        return Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories)
            .Where(p => !Directory.Exists(p) || new FileInfo(p).LinkTarget is not null)
            .Select(p => Path.GetRelativePath(dir, p).Replace('\\', '/')).Order(StringComparer.Ordinal).ToList();
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        try { Directory.Delete(Dir, true); } catch (IOException) { }
    }

    public static string Commit(string seed) => Convert.ToHexStringLower(System.Security.Cryptography.SHA1.HashData(Encoding.UTF8.GetBytes(seed)));

    /// <summary>The files of a folder as a repository (paths with '/').</summary>
    public static Dictionary<string, byte[]> FromFolder(string dir) =>
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(dir, f).Replace('\\', '/'), File.ReadAllBytes, StringComparer.Ordinal);

    public static byte[] Bytes(int n, int seed) => Enumerable.Range(0, n).Select(i => (byte)((i * 31 + seed) % 251)).ToArray();

    /// <summary>
    /// A diffusers-shaped repository with the distractors real repositories have: pickles and flax/onnx beside
    /// safetensors, fp16 variants (unet only), code, a safety checker, a top-level .ckpt.
    /// </summary>
    public static Dictionary<string, byte[]> Distracting()
    {
        byte[] T(string s) => Encoding.UTF8.GetBytes(s);
        return new(StringComparer.Ordinal)
        {
            ["model_index.json"] = T("""{"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"], "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"], "scheduler": ["diffusers", "PNDMScheduler"], "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"], "feature_extractor": ["transformers", "CLIPImageProcessor"], "requires_safety_checker": true}"""),
            ["README.md"] = T("# card"),
            ["v1-5-pruned.ckpt"] = Bytes(3000, 1),
            ["v1-5-pruned.safetensors"] = Bytes(3000, 2),
            ["unet/config.json"] = T("{}"),
            ["unet/diffusion_pytorch_model.safetensors"] = Bytes(40_000, 3),
            ["unet/diffusion_pytorch_model.fp16.safetensors"] = Bytes(20_000, 4),
            ["unet/diffusion_pytorch_model.bin"] = Bytes(4000, 5),
            ["unet/diffusion_pytorch_model.fp16.bin"] = Bytes(2000, 6),
            ["unet/diffusion_flax_model.msgpack"] = Bytes(2000, 7),
            ["unet/custom_unet.py"] = T("import os"),
            ["vae/config.json"] = T("{}"),
            ["vae/diffusion_pytorch_model.safetensors"] = Bytes(10_000, 8),
            ["vae/diffusion_pytorch_model.bin"] = Bytes(1000, 9),
            ["vae/model.onnx"] = Bytes(1000, 10),
            ["text_encoder/config.json"] = T("{}"),
            ["text_encoder/model.safetensors"] = Bytes(9000, 11),
            ["text_encoder/pytorch_model.bin"] = Bytes(900, 12),
            ["text_encoder/flax_model.msgpack"] = Bytes(900, 13),
            ["tokenizer/vocab.json"] = T("{}"),
            ["tokenizer/merges.txt"] = T("#version: 0.2\n"),
            ["tokenizer/special_tokens_map.json"] = T("{}"),
            ["tokenizer/tokenizer_config.json"] = T("{}"),
            ["scheduler/scheduler_config.json"] = T("{}"),
            ["safety_checker/config.json"] = T("{}"),
            ["safety_checker/model.safetensors"] = Bytes(5000, 14),
            ["feature_extractor/preprocessor_config.json"] = T("{}"),
        };
    }
}
