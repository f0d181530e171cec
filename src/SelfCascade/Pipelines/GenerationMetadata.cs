using System.Globalization;

namespace SelfCascade.Pipelines;

/// <summary>
/// The PNG text chunks of a generated image: its generation parameters, and an A1111-style `parameters` line. The
/// CLI and the server both write these, so the same run gives the same file.
/// </summary>
public static class GenerationMetadata
{
    public static Dictionary<string, string> For(GenerationRequest r, StableDiffusionPipeline pipe, int width, int height, string model, string method)
    {
        var inv = CultureInfo.InvariantCulture;
        var g = (r.Guidance ?? pipe.DefaultGuidance).ToString(inv);
        var d = new Dictionary<string, string>
        {
            ["prompt"] = r.Prompt,
            ["negative_prompt"] = r.NegativePrompt ?? "",
            ["seed"] = r.Seed.ToString(inv),
            ["steps"] = r.Steps.ToString(inv),
            ["guidance"] = g,
            ["size"] = $"{width}x{height}",
            ["scheduler"] = pipe.Scheduler.ClassName,
            ["method"] = method,
            ["model"] = Path.GetFileName(Path.GetFullPath(model).TrimEnd('/')),
            ["software"] = "SelfCascade",
        };
        d["parameters"] = $"{r.Prompt}\nNegative prompt: {r.NegativePrompt ?? ""}\nSteps: {r.Steps}, Sampler: {pipe.Scheduler.ClassName}, CFG scale: {g}, Seed: {r.Seed}, Size: {width}x{height}, Method: {method}";
        return d;
    }
}
