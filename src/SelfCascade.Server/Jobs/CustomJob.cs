using SelfCascade.Server.Models;
using SelfCascade.Server.Storage;

namespace SelfCascade.Server.Jobs;

/// <summary>
/// What a <see cref="JobKind.Custom"/> job's work gets on the worker thread: its id and output folder, the models
/// (<see cref="ModelRegistry.Acquire"/>), a publisher for its events (progress etc.) and the cancellation token
/// (cancel/interrupt; a running job must stop within one denoising step, which the library's loops do).
/// </summary>
public sealed record CustomJobContext(string JobId, ModelRegistry Models, OutputStore Outputs, string OutputDir,
    Action<JobEvent> Publish, CancellationToken Cancellation)
{
    /// <summary>Served upsampler sets and LoRAs.</summary>
    public SelfCascade.Server.Extras.ServedExtras Extras { get; init; } = SelfCascade.Server.Extras.ServedExtras.None;
}

/// <summary>What a custom job made: image file names in its folder (in order), the first image's size and seed, timings.</summary>
public sealed record CustomJobResult(IReadOnlyList<string> Images, int Width = 0, int Height = 0, long Seed = 0,
    IReadOnlyDictionary<string, double>? TimingsOrNull = null)
{
    public IReadOnlyDictionary<string, double> Timings => TimingsOrNull ?? new Dictionary<string, double>();
}
