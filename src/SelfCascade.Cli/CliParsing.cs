namespace SelfCascade.Cli;

public static class CliParsing
{
    /// <summary>Parses "WxH" (width x height, e.g. 1024x768).</summary>
    public static (int Width, int Height) ParseSize(string text)
    {
        var parts = text.Trim().ToLowerInvariant().Split('x');
        if (parts.Length != 2 || !int.TryParse(parts[0], out var w) || !int.TryParse(parts[1], out var h))
            throw new ArgumentException($"size '{text}' is not WIDTHxHEIGHT (e.g. 1024x768)");
        if (w <= 0 || h <= 0) throw new ArgumentException($"size '{text}' must be positive");
        return (w, h);
    }

    /// <summary>--offload none|model|sequential.</summary>
    public static SelfCascade.Offload.OffloadMode ParseOffload(string? text) => (text ?? "none") switch
    {
        "none" => SelfCascade.Offload.OffloadMode.None,
        "model" => SelfCascade.Offload.OffloadMode.Model,
        "sequential" => SelfCascade.Offload.OffloadMode.Sequential,
        _ => throw new ArgumentException($"--offload '{text}' is not none, model or sequential"),
    };
}
