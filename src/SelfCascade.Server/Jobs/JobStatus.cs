namespace SelfCascade.Server.Jobs;

/// <summary>A job's life: queued → running → done | failed | cancelled; interrupted = the server stopped under it.</summary>
public enum JobStatus
{
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
    /// <summary>Was queued or running when the server process ended without finishing it (found at the next start).</summary>
    Interrupted,
}

public static class JobStatusNames
{
    public static string Name(this JobStatus s) => s switch
    {
        JobStatus.Queued => "queued",
        JobStatus.Running => "running",
        JobStatus.Done => "done",
        JobStatus.Failed => "failed",
        JobStatus.Cancelled => "cancelled",
        JobStatus.Interrupted => "interrupted",
        _ => throw new ArgumentOutOfRangeException(nameof(s)),
    };

    public static JobStatus Parse(string name) => name switch
    {
        "queued" => JobStatus.Queued,
        "running" => JobStatus.Running,
        "done" => JobStatus.Done,
        "failed" => JobStatus.Failed,
        "cancelled" => JobStatus.Cancelled,
        "interrupted" => JobStatus.Interrupted,
        _ => throw new ArgumentException($"unknown job status '{name}'"),
    };

    public static bool IsFinal(this JobStatus s) => s is JobStatus.Done or JobStatus.Failed or JobStatus.Cancelled or JobStatus.Interrupted;
}

/// <summary>One stage's record in a finished job: size, steps run, seconds.</summary>
public sealed record JobStageTiming(int Index, int Width, int Height, int Steps, double Strength, double Guidance, double Seconds);

/// <summary>
/// A job's record as stored (SQLite) and served: parameters, status, timings, error, output files (names under the
/// job's folder in the data dir).
/// </summary>
public sealed record JobInfo
{
    public required string Id { get; init; }
    public required JobStatus Status { get; init; }
    public required string Kind { get; init; }
    public required string Model { get; init; }
    public required string Origin { get; init; }
    /// <summary>The request as JSON (<see cref="JobRequest.ParametersJson"/> or a summary).</summary>
    public required string ParametersJson { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    /// <summary>Why it failed, was cancelled or interrupted (one line); null when done.</summary>
    public string? Error { get; init; }
    /// <summary>The seed actually used (a request without one gets a random seed).</summary>
    public long Seed { get; init; }
    public int Width { get; init; }
    public int Height { get; init; }
    /// <summary>Final image file names (job folder), in image order.</summary>
    public IReadOnlyList<string> Images { get; init; } = [];
    /// <summary>Earlier stages' image file names (job folder).</summary>
    public IReadOnlyList<string> StageImages { get; init; } = [];
    public IReadOnlyList<JobStageTiming> Stages { get; init; } = [];
    /// <summary>Phase timings in seconds (load, text_encode, stageN, decode, total).</summary>
    public IReadOnlyDictionary<string, double> Timings { get; init; } = new Dictionary<string, double>();
    /// <summary>Position in the queue (0 = next) while queued; null otherwise. Not stored.</summary>
    public int? QueuePosition { get; init; }
}
