using System.Text.Json.Nodes;

namespace SelfCascade.Server.Compat.A1111;

/// <summary>
/// What GET /sdapi/v1/progress reports about the job running now (A1111's shared.state): job_count images (or
/// passes), job_no done, sampling_step of sampling_steps in the current one.
/// </summary>
public sealed record A1111State
{
    public string Job { get; init; } = "";
    public int JobCount { get; init; }
    public int JobNo { get; init; }
    public int SamplingStep { get; init; }
    public int SamplingSteps { get; init; }
    /// <summary>0..1 of the current image's whole run (all cascade stages); when known it replaces step/steps in the arithmetic.</summary>
    public double? CurrentFraction { get; init; }
    public bool Interrupted { get; init; }
    public bool Skipped { get; init; }
    public DateTimeOffset? Started { get; init; }
    public string JobTimestamp { get; init; } = "0";
    /// <summary>The latest preview or stage image as PNG, if any.</summary>
    public byte[]? CurrentImagePng { get; init; }
    public string? TextInfo { get; init; }

    public static A1111State Idle { get; } = new();
}

/// <summary>A1111's progressapi arithmetic over a state snapshot.</summary>
public static class A1111Progress
{
    public static A1111ProgressResponse Build(A1111State s, DateTimeOffset now, bool skipCurrentImage = false)
    {
        var state = new JsonObject
        {
            ["skipped"] = s.Skipped,
            ["interrupted"] = s.Interrupted,
            ["stopping_generation"] = false,
            ["job"] = s.Job,
            ["job_count"] = s.JobCount,
            ["job_timestamp"] = s.JobTimestamp,
            ["job_no"] = s.JobNo,
            ["sampling_step"] = s.SamplingStep,
            ["sampling_steps"] = s.SamplingSteps,
        };
        if (s.JobCount == 0)
            return new A1111ProgressResponse { Progress = 0, EtaRelative = 0, State = state, TextInfo = s.TextInfo };
        double progress = 0.01 + (double)s.JobNo / s.JobCount;
        if (s.CurrentFraction is double f) progress += f / s.JobCount;
        else if (s.SamplingSteps > 0) progress += 1.0 / s.JobCount * s.SamplingStep / s.SamplingSteps;
        double elapsed = s.Started is { } t ? Math.Max(0, (now - t).TotalSeconds) : 0;
        double eta = elapsed / progress - elapsed;
        return new A1111ProgressResponse
        {
            Progress = Math.Min(progress, 1),
            EtaRelative = eta,
            State = state,
            CurrentImage = !skipCurrentImage && s.CurrentImagePng is { } png ? Convert.ToBase64String(png) : null,
            TextInfo = s.TextInfo,
        };
    }
}
