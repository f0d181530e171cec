namespace SelfCascade.Server.Jobs;

/// <summary>
/// Something that happened to a job, in order (<see cref="Sequence"/> grows across all jobs). Types:
/// <c>queued</c>, <c>started</c>, <c>progress</c> (Phase load|denoise|decode, Step/TotalSteps of Stage/StageCount,
/// Fraction of the whole job), <c>stage</c> (an earlier cascade stage finished: its decoded image as Png, also saved
/// as File in the job folder), <c>preview</c> (a cheap latent-to-RGB Png every few steps), and the final one:
/// <c>done</c>, <c>failed</c>, <c>cancelled</c> or <c>interrupted</c> (Message = why; Job = the final record).
/// </summary>
public sealed record JobEvent
{
    public required long Sequence { get; init; }
    public required string JobId { get; init; }
    public required string Type { get; init; }
    public required DateTimeOffset Time { get; init; }
    public string? Phase { get; init; }
    public int? Step { get; init; }
    public int? TotalSteps { get; init; }
    public int? Stage { get; init; }
    public int? StageCount { get; init; }
    /// <summary>0..1 over the whole job (stages weighted equally).</summary>
    public double? Fraction { get; init; }
    public string? Message { get; init; }
    /// <summary>Stage image or preview, PNG-encoded (no metadata).</summary>
    public byte[]? Png { get; init; }
    public int? Width { get; init; }
    public int? Height { get; init; }
    /// <summary>For <c>stage</c>: the image's file name in the job folder.</summary>
    public string? File { get; init; }
    /// <summary>For final events: the job's final record.</summary>
    public JobInfo? Job { get; init; }

    public bool IsFinal => Type is JobEventTypes.Done or JobEventTypes.Failed or JobEventTypes.Cancelled or JobEventTypes.Interrupted;
}

public static class JobEventTypes
{
    public const string Queued = "queued", Started = "started", Progress = "progress", Stage = "stage", Preview = "preview",
        Done = "done", Failed = "failed", Cancelled = "cancelled", Interrupted = "interrupted";

    public static string ForStatus(JobStatus s) => s switch
    {
        JobStatus.Done => Done,
        JobStatus.Failed => Failed,
        JobStatus.Cancelled => Cancelled,
        JobStatus.Interrupted => Interrupted,
        JobStatus.Running => Started,
        _ => Queued,
    };
}
