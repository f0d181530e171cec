using SelfCascade.Inspection;
using SelfCascade.IO;

namespace SelfCascade.Checkpoints.Lora;

/// <summary>What `inspect --lora` reports: the file's layout and layers, and (with a model) which keys matched.</summary>
public sealed record LoraInspection(string Path, LoraFormat Format, IReadOnlyDictionary<string, int> LayersPerComponent,
    IReadOnlyList<long> Ranks, int WithAlpha, IReadOnlyList<string> UnknownKeys, LoraMatchReport? Match)
{
    public bool Ok => UnknownKeys.Count == 0 && (Match?.Ok ?? true);
}

public static class LoraInspector
{
    /// <summary>Reads a LoRA file and, when <paramref name="modelDir"/> is a diffusers folder, matches it against the
    /// UNet and text encoder(s) built on the meta device (no weights are read).</summary>
    public static LoraInspection Inspect(string loraPath, string? modelDir)
    {
        using var set = LoraSet.Load(loraPath);
        LoraMatchReport? match = null;
        if (modelDir != null) match = set.Match(ModelWeightShapes(modelDir));
        return new LoraInspection(set.Path, set.Format,
            set.Layers.GroupBy(l => l.Component).ToDictionary(g => g.Key, g => g.Count()),
            set.Layers.Select(l => l.Rank).Distinct().Order().ToList(), set.Layers.Count(l => l.Alpha != null), set.UnknownKeys, match);
    }

    /// <summary>Component → state-dict name → shape for the LoRA-able components of a diffusers folder.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyDictionary<string, long[]>> ModelWeightShapes(string modelDir)
    {
        var folder = DiffusersModelFolder.Open(modelDir);
        var result = new Dictionary<string, IReadOnlyDictionary<string, long[]>>(StringComparer.Ordinal);
        foreach (var name in LoraSet.Components)
        {
            if (!folder.Components.TryGetValue(name, out var c)) continue;
            using var net = ModelInspector.CreateOnMeta(c.ClassName, System.IO.Path.Combine(c.Directory, "config.json"));
            if (net is null) continue;
            result[name] = net.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape, StringComparer.Ordinal);
        }
        return result;
    }
}
