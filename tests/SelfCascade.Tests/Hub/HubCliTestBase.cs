using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Hub;

/// <summary>
/// CLI tests against the fake hub: the CLI reads the process environment, as huggingface_hub does, so these point
/// HF_ENDPOINT and the caches at a fresh fake hub and clear the token and offline switches (nothing of the machine's
/// may leak in), restoring them afterwards. The environment is process-wide, so every such class is in
/// <see cref="HubEnvironmentCollection"/> and they never run at the same time.
/// </summary>
public abstract class HubCliTestBase : IAsyncLifetime
{
    protected HubTestContext _hub = null!;
    private readonly Dictionary<string, string?> _saved = new();

    public async Task InitializeAsync()
    {
        TorchSetup.Ensure();
        _hub = await HubTestContext.StartAsync();
        Set("HF_ENDPOINT", _hub.Server.Endpoint);
        Set("HF_HUB_CACHE", _hub.Cache);
        Set("HF_HOME", Path.Combine(_hub.Dir, "hf_home"));
        Set("HF_TOKEN", null);
        Set("HUGGING_FACE_HUB_TOKEN", null);
        Set("HF_HUB_OFFLINE", null);
        Set("TRANSFORMERS_OFFLINE", null);
    }

    protected void Set(string name, string? value)
    {
        if (!_saved.ContainsKey(name)) _saved[name] = Environment.GetEnvironmentVariable(name);
        Environment.SetEnvironmentVariable(name, value);
    }

    public async Task DisposeAsync()
    {
        foreach (var (k, v) in _saved) Environment.SetEnvironmentVariable(k, v);
        await _hub.DisposeAsync();
    }
}

/// <summary>The classes that set the HF_* environment variables run one after another (see <see cref="HubCliTestBase"/>).</summary>
[CollectionDefinition(Name)]
public sealed class HubEnvironmentCollection
{
    public const string Name = "hub environment variables";
}
