using System.Text.Json;
using SelfCascade.IO;
using TorchSharp;

namespace SelfCascade.Tests.Support;

/// <summary>
/// A full-size architecture fixture (<c>fixtures/diffusers-parity/arch/*.json</c>): the reference config, the
/// reference class name (text encoders), the parameter count and every state-dict name with its shape. Compare a
/// network built from the same config with <see cref="Compare"/>, which returns every problem at once.
/// </summary>
public sealed class ArchFixture
{
    public required string Path { get; init; }
    /// <summary>The reference model's config as a <see cref="ConfigJson"/> (problems collected there).</summary>
    public required ConfigJson Config { get; init; }
    /// <summary>The reference class (e.g. CLIPTextModelWithProjection), when the fixture records one.</summary>
    public string? ClassName { get; init; }
    public required long ParameterCount { get; init; }
    public required IReadOnlyDictionary<string, long[]> StateDict { get; init; }

    /// <summary>Loads <c>arch/{fileName}</c>.</summary>
    public static ArchFixture Load(string fileName)
    {
        var path = Fixtures.ParityPath("arch", fileName);
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = doc.RootElement;
        var shapes = new SortedDictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var p in root.GetProperty("state_dict").EnumerateObject())
            shapes[p.Name] = p.Value.EnumerateArray().Select(d => d.GetInt64()).ToArray();
        return new ArchFixture
        {
            Path = path,
            Config = new ConfigJson(root.GetProperty("config"), path + "#config"),
            ClassName = root.TryGetProperty("class", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null,
            ParameterCount = root.GetProperty("params").GetInt64(),
            StateDict = shapes,
        };
    }

    /// <summary>
    /// Every difference between <paramref name="network"/>'s state dict and the fixture: missing, unexpected and
    /// mis-shaped keys (sorted by name), then a parameter-count mismatch. Empty when they match. Reads only shapes,
    /// so a network built on the meta device works.
    /// </summary>
    public IReadOnlyList<string> Compare(torch.nn.Module network)
    {
        var ours = new SortedDictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var (name, t) in network.state_dict()) ours[name] = t.shape;
        var problems = new List<string>();
        foreach (var name in StateDict.Keys.Where(k => !ours.ContainsKey(k)))
            problems.Add($"missing: {name} [{Fmt(StateDict[name])}]");
        foreach (var name in ours.Keys.Where(k => !StateDict.ContainsKey(k)))
            problems.Add($"unexpected: {name} [{Fmt(ours[name])}]");
        foreach (var (name, shape) in ours)
            if (StateDict.TryGetValue(name, out var expected) && !expected.SequenceEqual(shape))
                problems.Add($"wrong shape: {name}: ours [{Fmt(shape)}], reference [{Fmt(expected)}]");
        long count = network.parameters().Sum(p => p.numel());
        if (count != ParameterCount) problems.Add($"parameter count: ours {count:N0}, reference {ParameterCount:N0}");
        return problems;
    }

    /// <summary>Fails listing every problem <see cref="Compare"/> finds.</summary>
    public void AssertMatches(torch.nn.Module network)
    {
        var problems = Compare(network);
        Assert.True(problems.Count == 0,
            $"{System.IO.Path.GetFileName(Path)}: {problems.Count} difference(s):\n  " + string.Join("\n  ", problems));
    }

    /// <summary>Every parameter and buffer of <paramref name="network"/> that is not on the meta device (none expected).</summary>
    public static IReadOnlyList<string> NotOnMeta(torch.nn.Module network) =>
        network.state_dict().Where(kv => !kv.Value.is_meta).Select(kv => kv.Key).ToList();

    private static string Fmt(long[] shape) => string.Join(",", shape);
}
