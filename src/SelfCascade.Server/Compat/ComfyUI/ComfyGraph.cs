using System.Text.Json;
using System.Text.Json.Nodes;

namespace SelfCascade.Server.Compat.ComfyUI;

/// <summary>A link from an input to output <see cref="Slot"/> of node <see cref="NodeId"/> (<c>["4", 0]</c> in API format).</summary>
public sealed record ComfyLink(string NodeId, int Slot);

/// <summary>One node of an API-format workflow: <c>"3": {"class_type": "KSampler", "inputs": {...}}</c>.</summary>
public sealed class ComfyNode(string id, string? classType, JsonObject inputs)
{
    public string Id { get; } = id;
    /// <summary>Null when the node had no class_type string.</summary>
    public string? ClassType { get; } = classType;
    /// <summary>The raw inputs: literals (numbers, strings, booleans) or links (two-element arrays).</summary>
    public JsonObject Inputs { get; } = inputs;

    /// <summary>The link an input holds, when it is one (a two-element array of a node id and a slot index).</summary>
    public static bool TryLink(JsonNode? value, out ComfyLink? link)
    {
        link = null;
        if (value is not JsonArray { Count: 2 } a) return false;
        string? id = a[0] switch
        {
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            JsonValue v when v.TryGetValue<long>(out var n) => n.ToString(System.Globalization.CultureInfo.InvariantCulture),
            _ => null,
        };
        if (id is null || a[1] is not JsonValue sv || !sv.TryGetValue<int>(out var slot)) return false;
        link = new ComfyLink(id, slot);
        return true;
    }
}

/// <summary>Thrown for a prompt that is not an API-format graph at all (ComfyUI's top-level "invalid_prompt").</summary>
public sealed class ComfyPromptException(ComfyError error) : Exception(error.Message)
{
    public ComfyError Error { get; } = error;
}

/// <summary>
/// An API-format workflow (what ComfyUI's "Save (API format)" writes and POST /prompt takes under "prompt"): an object
/// of node id → {class_type, inputs}. Parsing checks the structure only; <see cref="ComfyValidator"/> checks the nodes.
/// </summary>
public sealed class ComfyGraph
{
    /// <summary>A bound on graph size (hostile input): ComfyUI has none; real workflows have tens of nodes.</summary>
    public const int MaxNodes = 500;

    private readonly Dictionary<string, ComfyNode> _nodes;
    /// <summary>Nodes in the order the request listed them.</summary>
    public IReadOnlyList<ComfyNode> Nodes { get; }
    /// <summary>The graph as it was posted (kept for /history's "prompt" entry and the PNG's "prompt" text chunk).</summary>
    public JsonObject Source { get; }

    private ComfyGraph(List<ComfyNode> nodes, JsonObject source)
    {
        Nodes = nodes;
        _nodes = nodes.ToDictionary(n => n.Id);
        Source = source;
    }

    public ComfyNode? this[string id] => _nodes.GetValueOrDefault(id);

    public static ComfyGraph Parse(JsonNode? prompt)
    {
        if (prompt is not JsonObject root)
            throw new ComfyPromptException(ComfyError.Create("invalid_prompt", "The prompt must be a JSON object of node id to node (API format).", ""));
        if (root.Count > MaxNodes)
            throw new ComfyPromptException(ComfyError.Create("invalid_prompt", $"The prompt has {root.Count} nodes; at most {MaxNodes} are accepted.", ""));
        var nodes = new List<ComfyNode>();
        foreach (var (id, value) in root)
        {
            if (value is not JsonObject node)
                throw new ComfyPromptException(ComfyError.Create("invalid_prompt", "Cannot execute because a node is not an object.", $"Node ID '#{id}'"));
            string? classType = node["class_type"] is JsonValue cv && cv.GetValueKind() == JsonValueKind.String ? cv.GetValue<string>() : null;
            var inputs = node["inputs"] switch
            {
                null => new JsonObject(),
                JsonObject o => o,
                _ => throw new ComfyPromptException(ComfyError.Create("invalid_prompt", "Cannot execute because a node's inputs are not an object.", $"Node ID '#{id}'")),
            };
            nodes.Add(new ComfyNode(id, classType, inputs));
        }
        return new ComfyGraph(nodes, root);
    }
}

/// <summary>One error in ComfyUI's shape: {type, message, details, extra_info}.</summary>
public sealed record ComfyError(string Type, string Message, string Details, JsonObject ExtraInfo)
{
    public static ComfyError Create(string type, string message, string details, JsonObject? extra = null) =>
        new(type, message, details, extra ?? new JsonObject());

    public JsonObject ToJson() => new()
    {
        ["type"] = Type, ["message"] = Message, ["details"] = Details, ["extra_info"] = ExtraInfo.DeepClone(),
    };
}
