using System.Text.Json.Nodes;
using SelfCascade.Server.Compat.ComfyUI;
using static SelfCascade.Tests.Server.Compat.ComfyWorkflows;

namespace SelfCascade.Tests.Server.Compat;

/// <summary>
/// The API-format parser and validator against ComfyUI's execution.py validate_prompt: error types, messages and the
/// node_errors shape ({id: {errors: [{type, message, details, extra_info}], dependent_outputs, class_type}}).
/// </summary>
public class ComfyValidationTests
{
    private static readonly ComfyNodeCatalog Catalog = new(new ComfyCatalogContext { Checkpoints = ["emoji-base"], MaxResolution = 1024 });

    private static ComfyValidation Validate(JsonObject prompt) => ComfyValidator.Validate(ComfyGraph.Parse(prompt), Catalog);

    private static JsonObject Valid() => HiresFix("emoji-base", "red heart", 1, 32, 10, 3.0, 7, 0.7);

    [Fact]
    public void TheHiresFixWorkflowIsValidAndItsSaveNodeIsTheOutput()
    {
        var v = Validate(Valid());
        Assert.True(v.Ok, v.ErrorBody().ToJsonString());
        Assert.Equal(["9"], v.Outputs);
        Assert.Empty(v.NodeErrors);
    }

    [Fact]
    public void AnUnknownNodeTypeIsInvalidPromptWithANodeErrorsEntry()
    {
        var p = Valid();
        p["12"] = Node("UpscaleModelLoader", new() { ["model_name"] = "4x.pth" });
        var v = Validate(p);
        Assert.False(v.Ok);
        Assert.Equal("invalid_prompt", v.Error!.Type);
        Assert.Equal("Cannot execute because node UpscaleModelLoader does not exist.", v.Error.Message);
        Assert.Equal("Node ID '#12'", v.Error.Details);
        var entry = v.NodeErrors["12"]!.AsObject();
        Assert.Equal("UpscaleModelLoader", entry["class_type"]!.GetValue<string>());
        Assert.Equal("invalid_prompt", entry["errors"]![0]!["type"]!.GetValue<string>());
        var body = v.ErrorBody();
        Assert.Equal(["error", "node_errors"], body.Select(kv => kv.Key));
        Assert.Equal(["type", "message", "details", "extra_info"], body["error"]!.AsObject().Select(kv => kv.Key));
    }

    [Fact]
    public void AMissingClassTypeIsInvalidPrompt()
    {
        var p = Valid();
        p["3"]!.AsObject().Remove("class_type");
        var v = Validate(p);
        Assert.Equal("invalid_prompt", v.Error!.Type);
        Assert.Equal("Cannot execute because a node is missing the class_type property.", v.Error.Message);
    }

    [Fact]
    public void NoOutputNodeIsPromptNoOutputs()
    {
        var p = Valid();
        p.Remove("9");
        var v = Validate(p);
        Assert.Equal("prompt_no_outputs", v.Error!.Type);
        Assert.Equal("Prompt has no outputs", v.Error.Message);
    }

    [Fact]
    public void InputErrorsAreReportedPerNodeWithComfyTypesAndTheOutputTheyBlock()
    {
        var p = Valid();
        var k = p["3"]!["inputs"]!.AsObject();
        k.Remove("cfg");                                   // required_input_missing
        k["sampler_name"] = "dpmpp_sde";                   // value_not_in_list
        k["steps"] = 100000;                               // value_bigger_than_max
        k["denoise"] = "lots";                             // invalid_input_type
        p["8"]!["inputs"]!["vae"] = Link("6", 0);          // return_type_mismatch (CONDITIONING != VAE)
        p["11"]!["inputs"]!["positive"] = new JsonArray("6", 0, 1); // bad_linked_input
        var v = Validate(p);
        Assert.False(v.Ok);
        Assert.Equal("prompt_outputs_failed_validation", v.Error!.Type);
        Assert.Equal("Prompt outputs failed validation", v.Error.Message);

        string[] Types(string id) => v.NodeErrors[id]!["errors"]!.AsArray().Select(e => e!["type"]!.GetValue<string>()).ToArray();
        // In the node's input order (model, seed, steps, cfg, sampler_name, ..., denoise), as ComfyUI reports them.
        Assert.Equal(["value_bigger_than_max", "required_input_missing", "value_not_in_list", "invalid_input_type"], Types("3"));
        Assert.Equal(["return_type_mismatch"], Types("8"));
        Assert.Equal(["bad_linked_input"], Types("11"));
        foreach (var id in new[] { "3", "8", "11" })
        {
            Assert.Equal(["9"], v.NodeErrors[id]!["dependent_outputs"]!.AsArray().Select(x => x!.GetValue<string>()));
            Assert.Equal(["errors", "dependent_outputs", "class_type"], v.NodeErrors[id]!.AsObject().Select(kv => kv.Key));
        }
        var errors = v.NodeErrors["3"]!["errors"]!.AsArray();
        Assert.Equal("Value 100000 bigger than max of 1000", errors[0]!["message"]!.GetValue<string>());
        Assert.Equal("Required input is missing", errors[1]!["message"]!.GetValue<string>());
        Assert.Equal("cfg", errors[1]!["details"]!.GetValue<string>());
        Assert.StartsWith("sampler_name: 'dpmpp_sde' not in ['euler', ", errors[2]!["details"]!.GetValue<string>());
        Assert.Equal("Failed to convert an input value to a FLOAT value", errors[3]!["message"]!.GetValue<string>());
        Assert.Equal("sampler_name", errors[2]!["extra_info"]!["input_name"]!.GetValue<string>());
        Assert.Equal("dpmpp_sde", errors[2]!["extra_info"]!["received_value"]!.GetValue<string>());
        Assert.Equal("vae, CONDITIONING != VAE", v.NodeErrors["8"]!["errors"]![0]!["details"]!.GetValue<string>());
        // Nodes downstream of a failing node (9 depends on 8) carry no reasons of their own and are not listed.
        Assert.Null(v.NodeErrors["9"]);
    }

    [Fact]
    public void LinksToMissingNodesOrSlotsAndCyclesAreErrorsNotCrashes()
    {
        var p = Valid();
        p["10"]!["inputs"]!["samples"] = Link("99", 0);
        Assert.Equal("bad_linked_input", Validate(p).NodeErrors["10"]!["errors"]![0]!["type"]!.GetValue<string>());

        p = Valid();
        p["10"]!["inputs"]!["samples"] = Link("3", 5);
        Assert.Equal("bad_linked_input", Validate(p).NodeErrors["10"]!["errors"]![0]!["type"]!.GetValue<string>());

        p = Valid();
        p["3"]!["inputs"]!["latent_image"] = Link("11", 0); // 3 -> 11 -> 10 -> 3
        var v = Validate(p);
        Assert.False(v.Ok);
        Assert.Contains(v.NodeErrors, kv => kv.Value!["errors"]!.AsArray().Any(e => e!["type"]!.GetValue<string>() == "dependency_cycle"));
    }

    [Fact]
    public void LiteralsConvertAsPythonDoesAndKarrasNeedsASigmaSampler()
    {
        var p = Valid();
        p["3"]!["inputs"]!["steps"] = "12";     // int("12")
        p["3"]!["inputs"]!["cfg"] = 3;          // float(3)
        p["5"]!["inputs"]!["width"] = 32.9;     // int(32.9) = 32
        Assert.True(Validate(p).Ok);

        p["3"]!["inputs"]!["scheduler"] = "karras"; // ddim has no Karras sigmas here
        var v = Validate(p);
        Assert.Equal("custom_validation_failed", v.NodeErrors["3"]!["errors"]![0]!["type"]!.GetValue<string>());
        p["3"]!["inputs"]!["sampler_name"] = "dpmpp_2m";
        Assert.True(Validate(p).Ok);
    }

    [Fact]
    public void AGraphThatIsNotAnObjectOrTooLargeIsRefusedAtParse()
    {
        Assert.Equal("invalid_prompt", Assert.Throws<ComfyPromptException>(() => ComfyGraph.Parse(new JsonArray())).Error.Type);
        var huge = new JsonObject();
        for (int i = 0; i <= ComfyGraph.MaxNodes; i++) huge[i.ToString()] = Node("EmptyLatentImage", new());
        Assert.Throws<ComfyPromptException>(() => ComfyGraph.Parse(huge));
        Assert.Throws<ComfyPromptException>(() => ComfyGraph.Parse(new JsonObject { ["1"] = 5 }));
    }

    [Fact]
    public void ObjectInfoHasComfyShapes()
    {
        var info = Catalog.ObjectInfo();
        var k = info["KSampler"]!.AsObject();
        Assert.Equal(["input", "input_order", "output", "output_is_list", "output_name", "name", "display_name", "description",
            "python_module", "category", "output_node"], k.Select(kv => kv.Key));
        var req = k["input"]!["required"]!.AsObject();
        Assert.Equal("INT", req["seed"]![0]!.GetValue<string>());
        Assert.Equal(18446744073709551615UL, req["seed"]![1]!["max"]!.GetValue<ulong>());
        Assert.Contains("euler", req["sampler_name"]![0]!.AsArray().Select(x => x!.GetValue<string>()));
        Assert.Equal(["MODEL"], req["model"]!.AsArray().Select(x => x!.GetValue<string>()));
        Assert.Equal(["model", "seed", "steps", "cfg", "sampler_name", "scheduler", "positive", "negative", "latent_image", "denoise"],
            k["input_order"]!["required"]!.AsArray().Select(x => x!.GetValue<string>()));
        Assert.Equal(["LATENT"], k["output"]!.AsArray().Select(x => x!.GetValue<string>()));
        Assert.False(k["output_node"]!.GetValue<bool>());
        Assert.True(info["SaveImage"]!["output_node"]!.GetValue<bool>());
        Assert.Equal(["emoji-base"], info["CheckpointLoaderSimple"]!["input"]!["required"]!["ckpt_name"]![0]!.AsArray().Select(x => x!.GetValue<string>()));
        foreach (var n in new[] { "CheckpointLoaderSimple", "CLIPTextEncode", "EmptyLatentImage", "KSampler", "LatentUpscale", "LatentUpscaleBy",
                     "VAEDecode", "VAEEncode", "LoadImage", "SaveImage", "PreviewImage", "SelfCascade" })
            Assert.NotNull(info[n]);
    }
}
