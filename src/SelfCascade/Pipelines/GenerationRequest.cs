namespace SelfCascade.Pipelines;

/// <summary>One text-to-image request. Zero sizes mean the model's native size.</summary>
public sealed class GenerationRequest(string prompt)
{
    public string Prompt { get; init; } = prompt;
    public string? NegativePrompt { get; init; }
    public int Width { get; init; }
    public int Height { get; init; }
    public long Seed { get; init; }
    public int Steps { get; init; } = 50;
    /// <summary>Classifier-free guidance scale; null = the family default (7.5, SDXL 5.0). ≤ 1 disables CFG.</summary>
    public double? Guidance { get; init; }
    public int NumImages { get; init; } = 1;
}

/// <summary>Progress of a long run: one report per denoising step and per phase change.</summary>
public sealed record GenerationProgress(string Phase, int Step, int TotalSteps, int Stage = 0, int StageCount = 1)
{
    public override string ToString() => StageCount > 1
        ? $"stage {Stage + 1}/{StageCount} {Phase} {Step}/{TotalSteps}"
        : $"{Phase} {Step}/{TotalSteps}";
}
