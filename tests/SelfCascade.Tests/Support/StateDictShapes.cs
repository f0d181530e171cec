using System.Text.Json;
using TorchSharp;

namespace SelfCascade.Tests.Support;

/// <summary>
/// Compares a network's state dict with an arch/*.json fixture (every diffusers name and shape of a full-size
/// model, and its parameter count), reporting every missing, unexpected and mis-shaped name at once.
/// </summary>
public static class StateDictShapes
{
    public sealed record ArchFixture(JsonElement Config, long Params, SortedDictionary<string, long[]> Shapes);

    public static ArchFixture Load(string fileName)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Fixtures.ParityPath("arch", fileName)));
        var root = doc.RootElement;
        var shapes = new SortedDictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var p in root.GetProperty("state_dict").EnumerateObject())
            shapes[p.Name] = p.Value.EnumerateArray().Select(e => e.GetInt64()).ToArray();
        return new ArchFixture(root.GetProperty("config").Clone(), root.GetProperty("params").GetInt64(), shapes);
    }

    /// <summary>The fixture's config as JSON text (for the network's own config parser).</summary>
    public static string ConfigJson(ArchFixture f) => f.Config.GetRawText();

    /// <summary>Every difference between the network and the fixture; empty when they agree.</summary>
    public static List<string> Compare(torch.nn.Module network, ArchFixture expected)
    {
        var problems = new List<string>();
        var ours = new SortedDictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var (name, t) in network.state_dict()) ours[name] = t.shape;
        foreach (var (name, shape) in expected.Shapes)
        {
            if (!ours.TryGetValue(name, out var mine)) problems.Add($"missing: {name} [{string.Join(",", shape)}]");
            else if (!mine.SequenceEqual(shape)) problems.Add($"wrong shape: {name} ours [{string.Join(",", mine)}] expected [{string.Join(",", shape)}]");
        }
        foreach (var name in ours.Keys.Where(k => !expected.Shapes.ContainsKey(k)))
            problems.Add($"unexpected: {name} [{string.Join(",", ours[name])}]");
        long count = network.parameters().Sum(p => p.numel());
        if (count != expected.Params) problems.Add($"parameter count {count:N0}, expected {expected.Params:N0}");
        return problems;
    }

    public static void AssertMatches(torch.nn.Module network, ArchFixture expected, string what)
    {
        var problems = Compare(network, expected);
        Assert.True(problems.Count == 0, $"{what}: {problems.Count} problem(s):\n" + string.Join("\n", problems));
    }
}
