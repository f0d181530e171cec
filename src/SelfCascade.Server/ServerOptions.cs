using SelfCascade.Pipelines;
using SelfCascade.Server.Extras;
using SelfCascade.Server.Jobs;
using SelfCascade.Server.Models;

namespace SelfCascade.Server;

/// <summary>Everything `selfcascade serve` configures.</summary>
public sealed class ServerOptions
{
    /// <summary>Served models; the first is the default.</summary>
    public required IReadOnlyList<ModelSpec> Models { get; init; }
    /// <summary>Feature-upsampler sets requests may name (serve --upsamplers NAME=PATH[,PATH...]); validated at start.</summary>
    public IReadOnlyList<UpsamplerSpec> Upsamplers { get; init; } = [];
    /// <summary>LoRA files requests may name (serve --lora NAME=FILE); validated at start.</summary>
    public IReadOnlyList<LoraSpec> Loras { get; init; } = [];
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>0 = any free port (tests); the bound address is in <see cref="ServerApp.Addresses"/>.</summary>
    public int Port { get; init; } = 7860;
    /// <summary>Required when <see cref="Host"/> is not a loopback address; checked on every request when set.</summary>
    public string? ApiKey { get; init; }
    /// <summary>Job database (jobs.db) and outputs (jobs/{id}/).</summary>
    public required string DataDir { get; init; }
    public int MaxQueue { get; init; } = 16;
    public PipelineOptions Pipeline { get; init; } = new();
    /// <summary>Resident model weights at most (LRU unload beyond); default half the memory available to the process.</summary>
    public long? ModelMemoryBudgetBytes { get; init; }
    public JobLimits Limits { get; init; } = new();
    /// <summary>Request bodies larger than this are refused with 413 (base64 images included).</summary>
    public long MaxBodyBytes { get; init; } = 32L << 20;
    /// <summary>On shutdown (SIGTERM, Ctrl+C) a running job may finish within this, else it is cancelled.</summary>
    public TimeSpan ShutdownGrace { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>Tests: a model loader that stands in for <see cref="StableDiffusionPipeline.FromPretrained"/>.</summary>
    public Func<string, PipelineOptions, StableDiffusionPipeline>? Loader { get; init; }

    public static bool IsLoopback(string host) =>
        host is "localhost" or "127.0.0.1" or "::1" or "[::1]"
        || (System.Net.IPAddress.TryParse(host.Trim('[', ']'), out var ip) && System.Net.IPAddress.IsLoopback(ip));
}
