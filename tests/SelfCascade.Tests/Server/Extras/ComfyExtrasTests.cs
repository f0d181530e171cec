using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using SelfCascade.Imaging;
using static SelfCascade.Tests.Server.Compat.ComfyWorkflows;

namespace SelfCascade.Tests.Server.Extras;

/// <summary>
/// ComfyUI's LoraLoader and the SelfCascade node's served upsamplers: a graph gives the image the native API gives for
/// the same options with the LoRA / upsamplers (which equals generate's, NativeExtrasTests), strength_model and
/// strength_clip honoured separately, the weights restored after the graph, unknown names node_errors, a LoRA that
/// does not fit an execution error; /object_info lists the served names.
/// </summary>
public sealed class ComfyExtrasTests(ExtrasServerFixture f) : IClassFixture<ExtrasServerFixture>
{
    private TestServer S => f.Server;
    private const string Prompt = "a photo of a red circle";

    private async Task<(HttpStatusCode Status, JsonNode Body)> PostPrompt(JsonObject prompt)
    {
        var body = new JsonObject { ["prompt"] = prompt };
        using var r = await S.Client.PostAsync("/prompt", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        return (r.StatusCode, JsonNode.Parse(await r.Content.ReadAsStringAsync())!);
    }

    private async Task<string> RunFinal(JsonObject prompt, string expectStatus = "done")
    {
        var (status, body) = await PostPrompt(prompt);
        Assert.True(status == HttpStatusCode.OK, body.ToJsonString());
        var id = body["prompt_id"]!.GetValue<string>();
        var job = await S.WaitAsync(id);
        Assert.True(job.GetProperty("status").GetString() == expectStatus, job.ToString());
        return id;
    }

    private async Task<RgbImage> Image(string id)
    {
        var bytes = await S.Client.GetByteArrayAsync($"/api/jobs/{id}/images/0");
        var path = Path.GetTempFileName();
        try { File.WriteAllBytes(path, bytes); return RgbImage.Load(path); }
        finally { File.Delete(path); }
    }

    /// <summary>The hires-fix graph (32 -> 64, 4 base steps, 4 of 8 hires steps at denoise 0.5) with a LoraLoader (node 12) feeding the samplers and prompts.</summary>
    private static JsonObject WithLora(string lora, double strengthModel, double strengthClip)
    {
        var p = HiresFix("tiny", Prompt, 6, 32, 4, 7.0, 4, 0.5);
        p["12"] = Node("LoraLoader", new()
        {
            ["model"] = Link("4", 0), ["clip"] = Link("4", 1), ["lora_name"] = lora, ["strength_model"] = strengthModel, ["strength_clip"] = strengthClip,
        });
        foreach (var n in new[] { "3", "11" }) p[n]!["inputs"]!["model"] = Link("12", 0);
        foreach (var n in new[] { "6", "7" }) p[n]!["inputs"]!["clip"] = Link("12", 1);
        return p;
    }

    /// <summary>The same run through the native API: base stage 4 steps, stage 1 = 8 steps at strength 0.5.</summary>
    private async Task<RgbImage> Native(object? loras = null, string? upsamplers = null, bool hires = true)
    {
        var id = await S.SubmitAsync(hires
            ? new
            {
                prompt = Prompt, negative_prompt = "", seed = 6, steps = 4, guidance = 7.0, size = "64x64", base_size = "32x32", pivot_strength = 0.5,
                stage_steps = new[] { 4, 8 }, stage_strength = new[] { 0.5 }, preview_every = 0, loras, upsamplers,
            }
            : new { prompt = Prompt, negative_prompt = "", seed = 6, steps = 4, guidance = 7.0, size = "64x64", preview_every = 0, loras, upsamplers });
        var job = await S.WaitAsync(id);
        Assert.True(job.GetProperty("status").GetString() == "done", job.ToString());
        return await Image(id);
    }

    [Fact]
    public async Task LoraLoaderGivesTheNativeLoraImageAndTheWeightsComeBack()
    {
        var lora = await Image(await RunFinal(WithLora("style", 0.75, 0.75)));
        Assert.Equal((await Native(loras: new[] { new { name = "style", scale = 0.75 } })).Pixels, lora.Pixels);

        var plain = await Image(await RunFinal(HiresFix("tiny", Prompt, 6, 32, 4, 7.0, 4, 0.5)));
        var nativePlain = await Native();
        Assert.Equal(nativePlain.Pixels, plain.Pixels);
        Assert.NotEqual(plain.Pixels, lora.Pixels);

        // strength_model and strength_clip apart: the UNet at 1.5, the text encoder at 0.25, exactly.
        var split = await Image(await RunFinal(WithLora("style", 1.5, 0.25)));
        Assert.Equal((await Native(loras: new[] { new { name = "style", scale = 1.5, text_encoder_scale = 0.25 } })).Pixels, split.Pixels);
        Assert.NotEqual((await Native(loras: new[] { new { name = "style", scale = 0.25, text_encoder_scale = 1.5 } })).Pixels, split.Pixels);
        // strength 0 on both: the plain image.
        Assert.Equal(nativePlain.Pixels, (await Image(await RunFinal(WithLora("style", 0, 0)))).Pixels);
    }

    [Fact]
    public async Task SelfCascadeNodeRunsTheServedUpsamplers()
    {
        var p = HiresFix("tiny", Prompt, 6, 32, 4, 7.0, 4, 0.5);
        p.Remove("10");
        p["11"] = Node("SelfCascade", new()
        {
            ["seed"] = 6, ["steps"] = 4, ["cfg"] = 7.0, ["sampler_name"] = "ddim", ["scheduler"] = "normal",
            ["model"] = Link("4", 0), ["positive"] = Link("6", 0), ["negative"] = Link("7", 0), ["samples"] = Link("3", 0),
            ["width"] = 64, ["height"] = 64, ["pivot_strength"] = 0.0, ["upsamplers"] = "tuned",
        });
        var tuned = await Image(await RunFinal(p));
        Assert.Equal((await Native(upsamplers: "tuned", hires: false)).Pixels, tuned.Pixels);
        Assert.NotEqual((await Native(hires: false)).Pixels, tuned.Pixels);
    }

    [Fact]
    public async Task UnknownNamesAreNodeErrorsAndAMisfitLoraAnExecutionError()
    {
        var (status, body) = await PostPrompt(WithLora("../../etc/passwd", 1, 1));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("value_not_in_list", body["node_errors"]!["12"]!["errors"]![0]!["type"]!.GetValue<string>());

        var p = HiresFix("tiny", Prompt, 6, 32, 2, 7.0, 1, 0.5);
        p["11"] = Node("SelfCascade", new()
        {
            ["seed"] = 6, ["steps"] = 2, ["cfg"] = 7.0, ["sampler_name"] = "ddim", ["scheduler"] = "normal",
            ["model"] = Link("4", 0), ["positive"] = Link("6", 0), ["negative"] = Link("7", 0), ["samples"] = Link("3", 0),
            ["width"] = 64, ["height"] = 64, ["pivot_strength"] = 0.0, ["upsamplers"] = "nope",
        });
        p.Remove("10");
        (status, body) = await PostPrompt(p);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("value_not_in_list", body["node_errors"]!["11"]!["errors"]![0]!["type"]!.GetValue<string>());

        // SDXL keys on the SD model: the sampler fails naming them; the next graph is plain again.
        var id = await RunFinal(WithLora("misfit", 1, 1), "failed");
        Assert.Contains("lora_te2_", (await S.GetJobAsync(id)).GetProperty("error").GetString());
        var history = JsonNode.Parse(await S.Client.GetStringAsync($"/history/{id}"))![id]!;
        var error = history["status"]!["messages"]!.AsArray().Single(m => m![0]!.GetValue<string>() == "execution_error")![1]!;
        Assert.Equal(("3", "KSampler"), (error["node_id"]!.GetValue<string>(), error["node_type"]!.GetValue<string>()));

        // Prompts from different LoRA chains cannot be encoded together: a clear error, not an approximation.
        var mixed = WithLora("style", 1, 1);
        mixed["7"]!["inputs"]!["clip"] = Link("4", 1);
        id = await RunFinal(mixed, "failed");
        Assert.Contains("different LoRAs", (await S.GetJobAsync(id)).GetProperty("error").GetString());

        Assert.Equal((await Native()).Pixels, (await Image(await RunFinal(HiresFix("tiny", Prompt, 6, 32, 4, 7.0, 4, 0.5)))).Pixels);
    }

    [Fact]
    public async Task ObjectInfoListsLoraLoaderAndTheServedNames()
    {
        var info = JsonNode.Parse(await S.Client.GetStringAsync("/object_info"))!;
        var loader = info["LoraLoader"]!;
        Assert.Equal(["model", "clip", "lora_name", "strength_model", "strength_clip"], loader["input_order"]!["required"]!.AsArray().Select(x => x!.GetValue<string>()));
        Assert.Equal(["style", "misfit"], loader["input"]!["required"]!["lora_name"]![0]!.AsArray().Select(x => x!.GetValue<string>()));
        Assert.Equal(["MODEL", "CLIP"], loader["output"]!.AsArray().Select(x => x!.GetValue<string>()));
        Assert.Equal(["none", "tuned"], info["SelfCascade"]!["input"]!["required"]!["upsamplers"]![0]!.AsArray().Select(x => x!.GetValue<string>()));
    }
}
