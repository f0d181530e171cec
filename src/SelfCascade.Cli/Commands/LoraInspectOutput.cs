using System.Text.Json;
using SelfCascade.Checkpoints.Lora;

namespace SelfCascade.Cli.Commands;

/// <summary>`inspect --lora FILE [--model DIR]`: the LoRA's layout, and which of its keys match the model.</summary>
public static class LoraInspectOutput
{
    public static int Run(CliConsole console, string loraPath, string? modelDir, bool json)
    {
        var r = LoraInspector.Inspect(loraPath, modelDir);
        if (json)
            console.Out.WriteLine(JsonSerializer.Serialize(new
            {
                lora = r.Path, format = r.Format.ToString(), layers = r.LayersPerComponent, ranks = r.Ranks, with_alpha = r.WithAlpha,
                unknown_keys = r.UnknownKeys,
                match = r.Match is null ? null : new
                {
                    model = modelDir, matched = r.Match.Matched.Count, layers = r.Match.LayerCount,
                    matched_per_component = r.Match.MatchedPerComponent, unmatched = r.Match.Unmatched,
                },
                ok = r.Ok,
            }, CliConsole.Json));
        else
        {
            var w = console.Out;
            w.WriteLine(r.Path);
            w.WriteLine($"  format: {r.Format}");
            w.WriteLine($"  layers: {string.Join(", ", r.LayersPerComponent.Select(kv => $"{kv.Key} {kv.Value}"))} (ranks {string.Join("/", r.Ranks)}, {r.WithAlpha} with alpha)");
            foreach (var u in r.UnknownKeys) w.WriteLine($"  unknown key: {u}");
            if (r.Match is { } m)
            {
                w.WriteLine($"  matched: {m.Matched.Count} of {m.LayerCount} layers against {modelDir} ({string.Join(", ", m.MatchedPerComponent.Select(kv => $"{kv.Key} {kv.Value}"))})");
                foreach (var u in m.Unmatched) w.WriteLine($"  unmatched: {u}");
            }
        }
        if (!r.Ok) console.Error.WriteLine($"error: {loraPath}: {r.Match?.Unmatched.Count ?? r.UnknownKeys.Count} LoRA key(s) unknown or unmatched");
        return r.Ok ? 0 : 1;
    }
}
