using System.CommandLine;

namespace SelfCascade.Cli;

/// <summary>`--model DIR`: a diffusers folder; without it, the embedded emoji base model shipped with SelfCascade.</summary>
public static class ModelOption
{
    /// <summary>The embedded model's folder name (models/ in the repository, copied beside the executable).</summary>
    public const string EmbeddedName = "emoji-base";

    public static Option<string?> Create() => new("--model")
    {
        Description = $"A diffusers Stable Diffusion folder or a single-file checkpoint (.safetensors, original layout) (default: the embedded '{EmbeddedName}' model, offline)",
    };

    public static string Resolve(string? model)
    {
        if (!string.IsNullOrWhiteSpace(model)) return model;
        return EmbeddedModelDir() ?? throw new ArgumentException(
            $"no --model given and the embedded model 'models/{EmbeddedName}' was not found beside the program or in the checkout");
    }

    /// <summary>models/emoji-base beside the executable (published) or in a folder above it (a checkout's build).</summary>
    public static string? EmbeddedModelDir()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "models", EmbeddedName);
            if (File.Exists(Path.Combine(candidate, "model_index.json"))) return candidate;
        }
        return null;
    }
}
