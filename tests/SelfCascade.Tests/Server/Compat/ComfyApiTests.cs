using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SelfCascade.Imaging;
using static SelfCascade.Tests.Server.Compat.ComfyWorkflows;

namespace SelfCascade.Tests.Server.Compat;

/// <summary>
/// ComfyUI's API over real HTTP and a real WebSocket on loopback (the embedded model): POST /prompt answers and
/// node_errors, the /ws message sequence of one prompt, /history, /view (and its path checks), /queue, /object_info,
/// /upload/image + LoadImage, /interrupt, and an execution_error.
/// </summary>
public class ComfyApiTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private TestServer S => fixture.Server;
    private const string Ckpt = "emoji-base";

    private async Task<(HttpStatusCode Status, JsonNode Body)> PostPrompt(JsonObject prompt, string? clientId = null)
    {
        var body = new JsonObject { ["prompt"] = prompt, ["client_id"] = clientId };
        using var r = await S.Client.PostAsync("/prompt", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        return (r.StatusCode, JsonNode.Parse(await r.Content.ReadAsStringAsync())!);
    }

    private async Task<ClientWebSocket> Connect(string clientId)
    {
        var ws = new ClientWebSocket();
        var uri = new UriBuilder(S.BaseAddress) { Scheme = "ws", Path = "/ws", Query = $"clientId={clientId}" }.Uri;
        await ws.ConnectAsync(uri, CancellationToken.None);
        return ws;
    }

    /// <summary>Reads messages until <paramref name="until"/> matches one (inclusive), with a time limit.</summary>
    private static async Task<List<JsonObject>> Read(ClientWebSocket ws, Func<JsonObject, bool> until, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(3));
        var list = new List<JsonObject>();
        var buffer = new byte[1 << 16];
        while (true)
        {
            using var ms = new MemoryStream();
            WebSocketReceiveResult r;
            do
            {
                r = await ws.ReceiveAsync(buffer, cts.Token);
                ms.Write(buffer, 0, r.Count);
            } while (!r.EndOfMessage);
            Assert.Equal(WebSocketMessageType.Text, r.MessageType);
            var m = JsonNode.Parse(ms.ToArray())!.AsObject();
            list.Add(m);
            if (until(m)) return list;
        }
    }

    private static bool Is(JsonObject m, string type, string promptId) =>
        m["type"]!.GetValue<string>() == type && m["data"]?["prompt_id"]?.GetValue<string>() == promptId;

    [Fact]
    public async Task APromptRunsWithComfyUIsMessagesHistoryAndView()
    {
        using var ws = await Connect("client-a");
        var first = await Read(ws, _ => true);
        Assert.Equal("status", first[0]["type"]!.GetValue<string>());
        Assert.Equal("client-a", first[0]["data"]!["sid"]!.GetValue<string>());
        Assert.NotNull(first[0]["data"]!["status"]!["exec_info"]!["queue_remaining"]);

        var (status, body) = await PostPrompt(HiresFix(Ckpt, "red heart", 11, 32, 10, 3.0, 7, 0.7), "client-a");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["prompt_id", "number", "node_errors"], body.AsObject().Select(kv => kv.Key));
        var id = body["prompt_id"]!.GetValue<string>();

        var messages = await Read(ws, m => m["type"]!.GetValue<string>() == "executing" && m["data"]!["node"] is null
            && m["data"]!["prompt_id"]?.GetValue<string>() == id);
        var types = messages.Where(m => m["data"]?["prompt_id"]?.GetValue<string>() == id).Select(m => m["type"]!.GetValue<string>()).ToList();
        Assert.Equal("execution_start", types[0]);
        Assert.Equal("execution_cached", types[1]);
        Assert.Equal(["execution_success", "executing"], types[^2..]);
        var executing = messages.Where(m => Is(m, "executing", id) && m["data"]!["node"] is not null).Select(m => m["data"]!["node"]!.GetValue<string>());
        Assert.Equal(["4", "6", "7", "5", "3", "10", "11", "8", "9"], executing);
        var progress = messages.Where(m => Is(m, "progress", id)).Select(m => m["data"]!).ToList();
        Assert.Equal(10 + 7, progress.Count);
        Assert.Equal(["value", "max", "prompt_id", "node"], progress[0].AsObject().Select(kv => kv.Key));
        Assert.Equal((7, 7, "11"), (progress[^1]["value"]!.GetValue<int>(), progress[^1]["max"]!.GetValue<int>(), progress[^1]["node"]!.GetValue<string>()));
        var executed = Assert.Single(messages, m => Is(m, "executed", id))["data"]!;
        Assert.Equal("9", executed["node"]!.GetValue<string>());
        var saved = executed["output"]!["images"]![0]!;
        Assert.Equal(["filename", "subfolder", "type"], saved.AsObject().Select(kv => kv.Key));
        Assert.Equal("output", saved["type"]!.GetValue<string>());
        Assert.Matches("^hires_00001_\\.png$", saved["filename"]!.GetValue<string>());

        var history = JsonNode.Parse(await S.Client.GetStringAsync($"/history/{id}"))!;
        var entry = history[id]!;
        var promptItem = entry["prompt"]!.AsArray();
        Assert.Equal(5, promptItem.Count);
        Assert.Equal(id, promptItem[1]!.GetValue<string>());
        Assert.Equal("KSampler", promptItem[2]!["3"]!["class_type"]!.GetValue<string>());
        Assert.Equal("client-a", promptItem[3]!["client_id"]!.GetValue<string>());
        Assert.Equal(["9"], promptItem[4]!.AsArray().Select(x => x!.GetValue<string>()));
        Assert.Equal(saved.ToJsonString(), entry["outputs"]!["9"]!["images"]![0]!.ToJsonString());
        Assert.Equal("success", entry["status"]!["status_str"]!.GetValue<string>());
        Assert.True(entry["status"]!["completed"]!.GetValue<bool>());
        Assert.Equal(["execution_start", "execution_cached", "execution_success"],
            entry["status"]!["messages"]!.AsArray().Select(m => m![0]!.GetValue<string>()));

        using var view = await S.Client.GetAsync($"/view?filename={saved["filename"]}&subfolder={saved["subfolder"]}&type=output");
        Assert.Equal(HttpStatusCode.OK, view.StatusCode);
        Assert.Equal("image/png", view.Content.Headers.ContentType!.MediaType);
        var png = await view.Content.ReadAsByteArrayAsync();
        var text = PngText.Read(png);
        Assert.Equal("KSampler", JsonNode.Parse(text["prompt"])!["3"]!["class_type"]!.GetValue<string>()); // as ComfyUI's SaveImage
        Assert.Equal(id, S.Jobs.Get(id)!.Id);
        Assert.Equal(SelfCascade.Server.Jobs.JobStatus.Done, S.Jobs.Get(id)!.Status);

        var queue = JsonNode.Parse(await S.Client.GetStringAsync("/queue"))!;
        Assert.Equal(["queue_running", "queue_pending"], queue.AsObject().Select(kv => kv.Key));
        Assert.Empty(queue["queue_running"]!.AsArray());
        Assert.Contains(id, JsonNode.Parse(await S.Client.GetStringAsync("/history"))!.AsObject().Select(kv => kv.Key));
    }

    [Theory]
    [InlineData("../jobs.db", "")]
    [InlineData("jobs.db", "..")]
    [InlineData("image-0.png", "../../etc")]
    [InlineData("/etc/passwd", "")]
    public async Task ViewNamesOutsideTheOutputsAre404(string filename, string subfolder)
    {
        using var r = await S.Client.GetAsync($"/view?filename={Uri.EscapeDataString(filename)}&subfolder={Uri.EscapeDataString(subfolder)}&type=output");
        Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        using var i = await S.Client.GetAsync($"/view?filename={Uri.EscapeDataString(filename)}&type=input");
        Assert.Equal(HttpStatusCode.NotFound, i.StatusCode);
    }

    [Fact]
    public async Task UnknownNodesAndBadInputsAreNodeErrorsNotCrashes()
    {
        var p = HiresFix(Ckpt, "x", 1, 32, 2, 3.0, 1, 0.7);
        p["12"] = Node("ImageScaleBy", new() { ["scale_by"] = 2 });
        var (status, body) = await PostPrompt(p);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_prompt", body["error"]!["type"]!.GetValue<string>());
        Assert.Equal("ImageScaleBy", body["node_errors"]!["12"]!["class_type"]!.GetValue<string>());

        p = HiresFix(Ckpt, "x", 1, 32, 2, 3.0, 1, 0.7);
        p["3"]!["inputs"]!["sampler_name"] = "dpmpp_3m_sde";
        (status, body) = await PostPrompt(p);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("prompt_outputs_failed_validation", body["error"]!["type"]!.GetValue<string>());
        Assert.Equal("value_not_in_list", body["node_errors"]!["3"]!["errors"]![0]!["type"]!.GetValue<string>());

        p = HiresFix(Ckpt, "x", 1, 32, 2, 3.0, 1, 0.7);
        p["4"]!["inputs"]!["ckpt_name"] = "../../model.safetensors";
        (status, body) = await PostPrompt(p);
        Assert.Equal("value_not_in_list", body["node_errors"]!["4"]!["errors"]![0]!["type"]!.GetValue<string>());

        foreach (var raw in new[] { "{", "[]", "{\"prompt\": 5}", "{\"no_prompt\": {}}" })
        {
            using var r = await S.Client.PostAsync("/prompt", new StringContent(raw, Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            Assert.NotNull(JsonNode.Parse(await r.Content.ReadAsStringAsync())!["error"]);
        }
    }

    [Fact]
    public async Task AFailingNodeIsAnExecutionErrorAndTheServerKeepsServing()
    {
        using var ws = await Connect("client-err");
        await Read(ws, _ => true);
        var p = HiresFix(Ckpt, "x", 1, 32, 2, 3.0, 1, 0.7);
        p["11"] = Node("SelfCascade", new()
        {
            ["seed"] = 1, ["steps"] = 2, ["cfg"] = 3.0, ["sampler_name"] = "ddim", ["scheduler"] = "normal",
            ["model"] = Link("4", 0), ["positive"] = Link("6", 0), ["negative"] = Link("7", 0), ["samples"] = Link("3", 0),
            ["width"] = 16, ["height"] = 16, ["pivot_strength"] = 0.0, ["upsamplers"] = "none", // smaller than the base: no plan
        });
        p.Remove("10");
        var (status, body) = await PostPrompt(p, "client-err");
        Assert.Equal(HttpStatusCode.OK, status);
        var id = body["prompt_id"]!.GetValue<string>();
        var messages = await Read(ws, m => Is(m, "execution_error", id));
        var err = messages[^1]["data"]!;
        Assert.Equal(("11", "SelfCascade"), (err["node_id"]!.GetValue<string>(), err["node_type"]!.GetValue<string>()));
        Assert.Equal(["4", "6", "7", "5", "3"], err["executed"]!.AsArray().Select(x => x!.GetValue<string>()));
        Assert.False(string.IsNullOrEmpty(err["exception_message"]!.GetValue<string>()));
        var job = await S.WaitAsync(id);
        Assert.Equal("failed", job.GetProperty("status").GetString());
        var history = JsonNode.Parse(await S.Client.GetStringAsync($"/history/{id}"))![id]!;
        Assert.Equal("error", history["status"]!["status_str"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await PostPrompt(HiresFix(Ckpt, "x", 1, 32, 2, 3.0, 1, 0.7))).Status);
    }

    [Fact]
    public async Task InterruptStopsTheRunningPrompt()
    {
        using var ws = await Connect("client-int");
        await Read(ws, _ => true);
        var (_, body) = await PostPrompt(HiresFix(Ckpt, "x", 1, 32, 500, 3.0, 1, 0.7), "client-int");
        var id = body["prompt_id"]!.GetValue<string>();
        await Read(ws, m => Is(m, "progress", id));
        (await S.Client.PostAsync("/interrupt", null)).EnsureSuccessStatusCode();
        var messages = await Read(ws, m => Is(m, "execution_interrupted", id), TimeSpan.FromMinutes(1));
        Assert.Equal("3", messages[^1]["data"]!["node_id"]!.GetValue<string>());
        Assert.Equal("cancelled", (await S.WaitAsync(id)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task AnUploadedImageRunsThroughLoadImageVaeEncodeAndKSampler()
    {
        var png = new RgbImage(32, 32, Enumerable.Range(0, 32 * 32 * 3).Select(i => (byte)(i * 7)).ToArray()).EncodePng();
        using var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(png);
        file.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        form.Add(file, "image", "../my photo.png");
        using var up = await S.Client.PostAsync("/upload/image", form);
        var uploaded = JsonNode.Parse(await up.Content.ReadAsStringAsync())!;
        Assert.Equal(HttpStatusCode.OK, up.StatusCode);
        Assert.Equal(["name", "subfolder", "type"], uploaded.AsObject().Select(kv => kv.Key));
        var name = uploaded["name"]!.GetValue<string>();
        Assert.Equal("my_photo.png", name);
        using (var view = await S.Client.GetAsync($"/view?filename={name}&type=input")) Assert.Equal(HttpStatusCode.OK, view.StatusCode);

        var info = JsonNode.Parse(await S.Client.GetStringAsync("/object_info/LoadImage"))!;
        Assert.Contains(name, info["LoadImage"]!["input"]!["required"]!["image"]![0]!.AsArray().Select(x => x!.GetValue<string>()));

        var p = new JsonObject
        {
            ["1"] = Node("LoadImage", new() { ["image"] = name }),
            ["2"] = Node("CheckpointLoaderSimple", new() { ["ckpt_name"] = Ckpt }),
            ["3"] = Node("VAEEncode", new() { ["pixels"] = Link("1", 0), ["vae"] = Link("2", 2) }),
            ["4"] = Node("CLIPTextEncode", new() { ["text"] = "a cat", ["clip"] = Link("2", 1) }),
            ["5"] = Node("KSampler", new()
            {
                ["seed"] = 3, ["steps"] = 3, ["cfg"] = 3.0, ["sampler_name"] = "euler", ["scheduler"] = "normal", ["denoise"] = 0.5,
                ["model"] = Link("2", 0), ["positive"] = Link("4", 0), ["negative"] = Link("4", 0), ["latent_image"] = Link("3", 0),
            }),
            ["6"] = Node("VAEDecode", new() { ["samples"] = Link("5", 0), ["vae"] = Link("2", 2) }),
            ["7"] = Node("PreviewImage", new() { ["images"] = Link("6", 0) }),
        };
        var (status, body) = await PostPrompt(p);
        Assert.Equal(HttpStatusCode.OK, status);
        var id = body["prompt_id"]!.GetValue<string>();
        Assert.Equal("done", (await S.WaitAsync(id)).GetProperty("status").GetString());
        var image = JsonNode.Parse(await S.Client.GetStringAsync($"/history/{id}"))![id]!["outputs"]!["7"]!["images"]![0]!;
        Assert.Equal("temp", image["type"]!.GetValue<string>());

        using var bad = new MultipartFormDataContent { { new ByteArrayContent(Encoding.ASCII.GetBytes("not an image")), "image", "x.png" } };
        using var rejected = await S.Client.PostAsync("/upload/image", bad);
        Assert.Equal(HttpStatusCode.BadRequest, rejected.StatusCode);
    }

    [Fact]
    public async Task ObjectInfoListsTheNodesAndPromptGetShowsTheQueue()
    {
        var info = JsonNode.Parse(await S.Client.GetStringAsync("/object_info"))!.AsObject();
        Assert.Contains("KSampler", info.Select(kv => kv.Key));
        Assert.Contains("SelfCascade", info.Select(kv => kv.Key));
        Assert.Equal(["KSampler"], JsonNode.Parse(await S.Client.GetStringAsync("/object_info/KSampler"))!.AsObject().Select(kv => kv.Key));
        Assert.Empty(JsonNode.Parse(await S.Client.GetStringAsync("/object_info/Nope"))!.AsObject());
        Assert.NotNull(JsonNode.Parse(await S.Client.GetStringAsync("/prompt"))!["exec_info"]!["queue_remaining"]);
    }
}
