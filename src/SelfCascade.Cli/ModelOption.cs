using System.CommandLine;

namespace SelfCascade.Cli;

/// <summary>`--model DIR`: a diffusers folder.</summary>
public static class ModelOption
{
    public static Option<string?> Create() => new("--model") { Description = "A diffusers Stable Diffusion folder" };

    public static string Resolve(string? model) =>
        !string.IsNullOrWhiteSpace(model) ? model : throw new ArgumentException("--model is required");
}
