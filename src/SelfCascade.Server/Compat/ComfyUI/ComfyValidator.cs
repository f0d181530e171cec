using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SelfCascade.Server.Compat.ComfyUI;

/// <summary>
/// The outcome of <see cref="ComfyValidator.Validate"/>, shaped as ComfyUI's validate_prompt returns it:
/// ok, the top-level error, the output nodes that will run, and node_errors (node id → {errors, dependent_outputs, class_type}).
/// </summary>
public sealed record ComfyValidation(bool Ok, ComfyError? Error, IReadOnlyList<string> Outputs, JsonObject NodeErrors)
{
    /// <summary>The body of POST /prompt's 400 answer: <c>{"error": {...}, "node_errors": {...}}</c>.</summary>
    public JsonObject ErrorBody() => new() { ["error"] = Error?.ToJson(), ["node_errors"] = NodeErrors.DeepClone() };
}

/// <summary>
/// ComfyUI's prompt validation (execution.py validate_prompt / validate_inputs) over our node catalog, with its error
/// types and messages: invalid_prompt (no class_type, unknown node type), prompt_no_outputs, required_input_missing,
/// bad_linked_input, return_type_mismatch, invalid_input_type, value_smaller_than_min, value_bigger_than_max,
/// value_not_in_list, custom_validation_failed, prompt_outputs_failed_validation. Unlike ComfyUI, an unknown node
/// type is also listed in node_errors (so a client that only reads node_errors sees it), links to missing nodes and
/// cycles are errors rather than exceptions.
/// </summary>
public static class ComfyValidator
{
    public static ComfyValidation Validate(ComfyGraph graph, ComfyNodeCatalog catalog)
    {
        var outputs = new List<string>();
        foreach (var node in graph.Nodes)
        {
            if (node.ClassType is null)
                return Fail(ComfyError.Create("invalid_prompt", "Cannot execute because a node is missing the class_type property.", $"Node ID '#{node.Id}'"),
                    node, "");
            var spec = catalog.Find(node.ClassType);
            if (spec is null)
                return Fail(ComfyError.Create("invalid_prompt", $"Cannot execute because node {node.ClassType} does not exist.", $"Node ID '#{node.Id}'"),
                    node, node.ClassType);
            if (spec.IsOutputNode) outputs.Add(node.Id);
        }
        if (outputs.Count == 0)
            return new ComfyValidation(false, ComfyError.Create("prompt_no_outputs", "Prompt has no outputs", ""), [], new JsonObject());

        var validated = new Dictionary<string, (bool Ok, List<ComfyError> Errors)>();
        var good = new List<string>();
        var failed = new List<(string Output, List<ComfyError> Reasons)>();
        var nodeErrors = new JsonObject();
        foreach (var o in outputs)
        {
            var (ok, reasons) = ValidateNode(graph, catalog, o, validated, new HashSet<string>());
            if (ok) { good.Add(o); continue; }
            failed.Add((o, reasons));
            foreach (var (id, result) in validated)
            {
                // As ComfyUI: nodes downstream of a failing node are invalid without reasons of their own; only
                // nodes with reasons are reported.
                if (result.Ok || result.Errors.Count == 0) continue;
                if (nodeErrors[id] is not JsonObject entry)
                {
                    entry = new JsonObject
                    {
                        ["errors"] = new JsonArray(result.Errors.Select(e => (JsonNode?)e.ToJson()).ToArray()),
                        ["dependent_outputs"] = new JsonArray(),
                        ["class_type"] = graph[id]!.ClassType,
                    };
                    nodeErrors[id] = entry;
                }
                ((JsonArray)entry["dependent_outputs"]!).Add(o);
            }
        }
        if (good.Count == 0)
        {
            var lines = failed.SelectMany(f => f.Reasons).Select(e => $"{e.Message}: {e.Details}");
            return new ComfyValidation(false, ComfyError.Create("prompt_outputs_failed_validation", "Prompt outputs failed validation", string.Join("\n", lines)),
                [], nodeErrors);
        }
        return new ComfyValidation(true, null, good, nodeErrors);

        static ComfyValidation Fail(ComfyError error, ComfyNode node, string classType)
        {
            var nodeErrors = new JsonObject
            {
                [node.Id] = new JsonObject
                {
                    ["errors"] = new JsonArray(error.ToJson()),
                    ["dependent_outputs"] = new JsonArray(),
                    ["class_type"] = classType,
                },
            };
            return new ComfyValidation(false, error, [], nodeErrors);
        }
    }

    private static (bool Ok, List<ComfyError> Errors) ValidateNode(ComfyGraph graph, ComfyNodeCatalog catalog, string id,
        Dictionary<string, (bool, List<ComfyError>)> validated, HashSet<string> path)
    {
        if (validated.TryGetValue(id, out var done)) return done;
        var node = graph[id]!;
        var spec = catalog.Find(node.ClassType!)!;
        path.Add(id);
        var errors = new List<ComfyError>();
        bool valid = true;
        foreach (var input in spec.Required.Concat(spec.Optional))
        {
            bool required = spec.Required.Contains(input);
            if (!node.Inputs.TryGetPropertyValue(input.Name, out var val))
            {
                if (required)
                    errors.Add(ComfyError.Create("required_input_missing", "Required input is missing", input.Name, new JsonObject { ["input_name"] = input.Name }));
                continue;
            }
            if (val is JsonArray arr)
            {
                if (!ComfyNode.TryLink(arr, out var link))
                {
                    errors.Add(ComfyError.Create("bad_linked_input", "Bad linked input, must be a length-2 list of [node_id, slot_index]", input.Name,
                        Extra(input, "received_value", val)));
                    continue;
                }
                var target = graph[link!.NodeId];
                var targetSpec = target?.ClassType is null ? null : catalog.Find(target.ClassType);
                if (target is null || targetSpec is null)
                {
                    errors.Add(ComfyError.Create("bad_linked_input", $"Bad linked input, node {link.NodeId} does not exist", input.Name,
                        Extra(input, "linked_node", val)));
                    continue;
                }
                if (link.Slot < 0 || link.Slot >= targetSpec.Outputs.Count)
                {
                    errors.Add(ComfyError.Create("bad_linked_input", $"Bad linked input, node {link.NodeId} ({target.ClassType}) has no output {link.Slot}",
                        input.Name, Extra(input, "linked_node", val)));
                    continue;
                }
                string received = targetSpec.Outputs[link.Slot];
                if (!input.IsLink || received != input.Type)
                {
                    var extra = Extra(input, "received_type", JsonValue.Create(received));
                    extra["linked_node"] = val.DeepClone();
                    errors.Add(ComfyError.Create("return_type_mismatch", "Return type mismatch between linked nodes",
                        $"{input.Name}, {received} != {(input.IsCombo ? "COMBO" : input.Type)}", extra));
                    continue;
                }
                if (path.Contains(link.NodeId))
                {
                    errors.Add(ComfyError.Create("dependency_cycle", "Dependency cycle detected", $"{input.Name} -> node {link.NodeId}", Extra(input, "linked_node", val)));
                    continue;
                }
                var (ok, _) = ValidateNode(graph, catalog, link.NodeId, validated, path);
                if (!ok) valid = false;
                continue;
            }
            if (input.IsLink)
            {
                errors.Add(ComfyError.Create("bad_linked_input", $"Bad linked input, {input.Type} must come from another node's output", input.Name,
                    Extra(input, "received_value", val)));
                continue;
            }
            var error = CheckLiteral(input, val);
            if (error is not null) errors.Add(error);
        }
        if (errors.Count == 0 && valid) errors.AddRange(CustomChecks(node, spec));
        path.Remove(id);
        var result = (errors.Count == 0 && valid, errors);
        validated[id] = result;
        return result;
    }

    private static JsonObject Extra(ComfyInputSpec input, string key, JsonNode? value) => new()
    {
        ["input_name"] = input.Name,
        ["input_config"] = input.Choices is { Count: > 20 } ? null : input.ToJson(),
        [key] = value?.DeepClone(),
    };

    /// <summary>A literal against its declared type and bounds (ComfyUI converts with int()/float()/str() first).</summary>
    private static ComfyError? CheckLiteral(ComfyInputSpec input, JsonNode? val)
    {
        switch (input.Type)
        {
            case "INT":
            case "FLOAT":
            {
                decimal? number = input.Type == "INT" ? ComfyValues.ToInt(val) : ComfyValues.ToFloat(val);
                if (number is not decimal n)
                    return ComfyError.Create("invalid_input_type", $"Failed to convert an input value to a {input.Type} value",
                        $"{input.Name}, {ComfyValues.Show(val)}", Extra(input, "received_value", val));
                if (input.Options?["min"] is JsonValue minV && ComfyValues.Number(minV) is decimal min && n < min)
                    return ComfyError.Create("value_smaller_than_min", $"Value {Fmt(n)} smaller than min of {minV.ToJsonString()}", input.Name,
                        Extra(input, "received_value", val));
                if (input.Options?["max"] is JsonValue maxV && ComfyValues.Number(maxV) is decimal max && n > max)
                    return ComfyError.Create("value_bigger_than_max", $"Value {Fmt(n)} bigger than max of {maxV.ToJsonString()}", input.Name,
                        Extra(input, "received_value", val));
                return null;
            }
            case "STRING":
                return ComfyValues.ToStr(val) is null
                    ? ComfyError.Create("invalid_input_type", "Failed to convert an input value to a STRING value", $"{input.Name}, {ComfyValues.Show(val)}",
                        Extra(input, "received_value", val))
                    : null;
            case "BOOLEAN":
                return val is JsonValue b && b.GetValueKind() is JsonValueKind.True or JsonValueKind.False
                    ? null
                    : ComfyError.Create("invalid_input_type", "Failed to convert an input value to a BOOLEAN value", $"{input.Name}, {ComfyValues.Show(val)}",
                        Extra(input, "received_value", val));
            default: // COMBO
                var s = val is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;
                if (s is not null && input.Choices!.Contains(s)) return null;
                string list = input.Choices!.Count > 20 ? $"(list of length {input.Choices.Count})" : "[" + string.Join(", ", input.Choices.Select(c => $"'{c}'")) + "]";
                return ComfyError.Create("value_not_in_list", "Value not in list", $"{input.Name}: '{ComfyValues.Show(val)}' not in {list}",
                    Extra(input, "received_value", val));
        }
    }

    private static string Fmt(decimal d) => d.ToString(CultureInfo.InvariantCulture);

    /// <summary>Checks that span inputs (ComfyUI's VALIDATE_INPUTS): sampler/scheduler pairs we cannot run.</summary>
    private static IEnumerable<ComfyError> CustomChecks(ComfyNode node, ComfyNodeSpec spec)
    {
        if (spec.Input("sampler_name") is not null && spec.Input("scheduler") is { } schedulerSpec
            && ComfyValues.ToStr(node.Inputs["sampler_name"]) is string sampler && ComfyValues.ToStr(node.Inputs["scheduler"]) is string scheduler
            && ComfySamplers.Resolve(sampler, scheduler, out var why) is null)
        {
            yield return ComfyError.Create("custom_validation_failed", "Custom validation failed for node", $"scheduler - {why}",
                Extra(schedulerSpec, "received_value", node.Inputs["scheduler"]));
        }
    }
}

/// <summary>Conversions of literal inputs as ComfyUI applies them (Python int(), float(), str()).</summary>
public static class ComfyValues
{
    /// <summary>int(val): integers, floats truncated toward zero, integer strings, booleans; null when Python would raise.</summary>
    public static decimal? ToInt(JsonNode? val)
    {
        if (val is not JsonValue v) return null;
        switch (v.GetValueKind())
        {
            case JsonValueKind.Number:
                return Number(v) is decimal d ? decimal.Truncate(d) : null; // beyond decimal's range: refused
            case JsonValueKind.String:
                var s = v.GetValue<string>().Trim().Replace("_", "");
                return decimal.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var i) ? i : null;
            case JsonValueKind.True: return 1;
            case JsonValueKind.False: return 0;
            default: return null;
        }
    }

    /// <summary>float(val): numbers, numeric strings, booleans; NaN and infinities are refused (no bound admits them).</summary>
    public static decimal? ToFloat(JsonNode? val)
    {
        if (val is not JsonValue v) return null;
        switch (v.GetValueKind())
        {
            case JsonValueKind.Number:
                return Number(v);
            case JsonValueKind.String:
                return decimal.TryParse(v.GetValue<string>().Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var f) ? f : null;
            case JsonValueKind.True: return 1;
            case JsonValueKind.False: return 0;
            default: return null;
        }
    }

    /// <summary>A JSON number as a decimal (null beyond decimal's range), whatever CLR type the node was built from.</summary>
    public static decimal? Number(JsonValue v) =>
        v.GetValueKind() == JsonValueKind.Number
        && decimal.TryParse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null;

    /// <summary>str(val) for strings, numbers and booleans; null for objects, arrays and null.</summary>
    public static string? ToStr(JsonNode? val) => val is JsonValue v ? v.GetValueKind() switch
    {
        JsonValueKind.String => v.GetValue<string>(),
        JsonValueKind.Number => v.ToJsonString(),
        JsonValueKind.True => "True",
        JsonValueKind.False => "False",
        _ => null,
    } : null;

    public static string Show(JsonNode? val) => val is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : val?.ToJsonString() ?? "None";
}
