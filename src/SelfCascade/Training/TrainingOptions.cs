namespace SelfCascade.Training;

/// <summary>Settings of the shared training loop (both train-base and train-upsamplers).</summary>
public sealed record TrainingOptions
{
    /// <summary>Run folder: checkpoints/, loss.csv, loss.png and whatever the task writes.</summary>
    public required string OutputDir { get; init; }
    /// <summary>Optimizer steps in all (a resumed run continues to this count).</summary>
    public int Steps { get; init; } = 1000;
    /// <summary>Samples per micro-batch.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Micro-batches whose gradients are summed (each scaled by 1/n) before one optimizer step.</summary>
    public int GradientAccumulation { get; init; } = 1;
    public double LearningRate { get; init; } = 1e-4;
    /// <summary>Linear warm-up from 0 over this many steps, then constant.</summary>
    public int WarmupSteps { get; init; }
    public double WeightDecay { get; init; } = 0.01;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Epsilon { get; init; } = 1e-8;
    /// <summary>Clip the global gradient norm to this (diffusers' training scripts use 1.0); 0 = off.</summary>
    public double MaxGradNorm { get; init; } = 1.0;
    public long Seed { get; init; }
    /// <summary>Shuffle each epoch (seeded); off = folder order.</summary>
    public bool Shuffle { get; init; } = true;
    /// <summary>Probability of replacing a caption with the empty one (so the model learns the unconditional case for CFG).</summary>
    public double CaptionDropout { get; init; } = 0.1;
    /// <summary>Write a checkpoint every this many steps (and at the end, and on cancel).</summary>
    public int CheckpointEvery { get; init; } = 500;
    /// <summary>Checkpoints kept (the newest).</summary>
    public int KeepCheckpoints { get; init; } = 2;
    /// <summary>Continue from the newest checkpoint in OutputDir/checkpoints.</summary>
    public bool Resume { get; init; }

    public IReadOnlyList<string> Validate()
    {
        var p = new List<string>();
        if (string.IsNullOrWhiteSpace(OutputDir)) p.Add("no output folder given");
        if (Steps < 1) p.Add($"steps must be at least 1 (got {Steps})");
        if (BatchSize < 1) p.Add($"batch must be at least 1 (got {BatchSize})");
        if (GradientAccumulation < 1) p.Add($"grad-accum must be at least 1 (got {GradientAccumulation})");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) p.Add($"learning rate must be positive (got {LearningRate})");
        if (WarmupSteps < 0) p.Add($"warm-up steps must be ≥ 0 (got {WarmupSteps})");
        if (!(WeightDecay >= 0)) p.Add($"weight decay must be ≥ 0 (got {WeightDecay})");
        if (!(Beta1 >= 0 && Beta1 < 1) || !(Beta2 >= 0 && Beta2 < 1)) p.Add($"Adam betas must lie in [0, 1) (got {Beta1}, {Beta2})");
        if (!(Epsilon > 0)) p.Add($"Adam epsilon must be positive (got {Epsilon})");
        if (!(MaxGradNorm >= 0)) p.Add($"max grad norm must be ≥ 0 (got {MaxGradNorm})");
        if (Seed < 0) p.Add($"seed must be non-negative (got {Seed})");
        if (!(CaptionDropout >= 0 && CaptionDropout <= 1)) p.Add($"caption dropout must lie in [0, 1] (got {CaptionDropout})");
        if (CheckpointEvery < 1) p.Add($"checkpoint-every must be at least 1 (got {CheckpointEvery})");
        if (KeepCheckpoints < 1) p.Add($"keep at least one checkpoint (got {KeepCheckpoints})");
        return p;
    }

    public void ThrowIfInvalid()
    {
        var p = Validate();
        if (p.Count > 0) throw new ArgumentException(string.Join("; ", p));
    }

    /// <summary>The learning rate of optimizer step <paramref name="step"/> (1-based).</summary>
    public double LearningRateAt(long step) =>
        WarmupSteps > 0 && step <= WarmupSteps ? LearningRate * step / WarmupSteps : LearningRate;
}

/// <summary>Progress of a training run, reported after every step and at phase changes.</summary>
/// <param name="Phase">train, checkpoint, preview, save or done.</param>
/// <param name="StepsPerSecond">Over this run's steps so far (excluding resumed ones).</param>
public sealed record TrainingProgress(string Phase, long Step, long TotalSteps, double Loss, double StepsPerSecond, TimeSpan Eta)
{
    public double Fraction => TotalSteps > 0 ? (double)Step / TotalSteps : 0;

    public override string ToString() => Phase == "train"
        ? $"step {Step}/{TotalSteps} loss {Loss:F4} {StepsPerSecond:F2} it/s"
        : $"{Phase} at step {Step}/{TotalSteps}";
}

/// <summary>What a finished run did.</summary>
public sealed record TrainingResult(long FinalStep, long StartStep, double Seconds, double StepsPerSecond,
    string? LastCheckpoint, IReadOnlyList<LossRecord> Losses);
