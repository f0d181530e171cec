using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using SelfCascade.Cascade;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Server.Compat;

/// <summary>
/// /sdapi/v1 over real HTTP on loopback against the embedded model, checked against A1111's documented shapes
/// (modules/api/models.py: TextToImageResponse, ProgressResponse, SDModelItem, SamplerItem; errors of api.py):
/// field names, base64 PNGs carrying the infotext, <c>info</c> as a JSON string; the hires fix equals our cascade.
/// </summary>
public class A1111ApiTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private TestServer S => fixture.Server;

    private async Task<JsonElement> PostOk(string path, object body)
    {
        using var r = await S.Client.PostAsJsonAsync(path, body);
        var text = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == HttpStatusCode.OK, $"{(int)r.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private async Task<(HttpStatusCode Status, JsonElement Body)> Post(string path, string json)
    {
        using var r = await S.Client.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        var text = await r.Content.ReadAsStringAsync();
        return (r.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }

    private static RgbImage DecodePng(string base64, out IReadOnlyDictionary<string, string> text)
    {
        var bytes = Convert.FromBase64String(base64);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
        text = PngText.Read(bytes);
        var path = Path.GetTempFileName();
        try { File.WriteAllBytes(path, bytes); return RgbImage.Load(path); }
        finally { File.Delete(path); }
    }

    [Fact]
    public async Task Txt2ImgAnswersTextToImageResponseWithBase64PngsAndInfoAsAJsonString()
    {
        var res = await PostOk("/sdapi/v1/txt2img", new
        {
            prompt = "red heart", negative_prompt = "", seed = 5, steps = 4, cfg_scale = 3, width = 32, height = 32, sampler_name = "DDIM",
            batch_size = 2, styles = Array.Empty<string>(), alwayson_scripts = new { },
        });
        Assert.Equal(["images", "parameters", "info"], res.EnumerateObject().Select(p => p.Name));
        Assert.Equal(2, res.GetProperty("images").GetArrayLength());
        Assert.Equal(JsonValueKind.String, res.GetProperty("info").ValueKind);
        using var info = JsonDocument.Parse(res.GetProperty("info").GetString()!);
        Assert.Equal([5L, 6L], info.RootElement.GetProperty("all_seeds").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal("DDIM", info.RootElement.GetProperty("sampler_name").GetString());
        var infotexts = info.RootElement.GetProperty("infotexts").EnumerateArray().Select(e => e.GetString()).ToList();
        for (int i = 0; i < 2; i++)
        {
            var img = DecodePng(res.GetProperty("images")[i].GetString()!, out var text);
            Assert.Equal((32, 32), (img.Width, img.Height));
            Assert.Equal(infotexts[i], text["parameters"]); // as A1111 writes it with enable_pnginfo
            Assert.Contains($"Seed: {5 + i},", text["parameters"]);
        }
        // "parameters" echoes the request with A1111's defaults filled in.
        var p = res.GetProperty("parameters");
        Assert.Equal("red heart", p.GetProperty("prompt").GetString());
        Assert.False(p.GetProperty("enable_hr").GetBoolean());
        Assert.Equal(2.0, p.GetProperty("hr_scale").GetDouble());
        Assert.Equal(1, p.GetProperty("n_iter").GetInt32());
        Assert.True(p.GetProperty("send_images").GetBoolean());
        // Each image was one job of the engine, visible to the native API.
        Assert.True(S.Jobs.List(10).Count(j => j.Origin == "a1111") >= 2);
    }

    [Fact]
    public async Task HiresFixIsOurCascadeImageForImage()
    {
        var res = await PostOk("/sdapi/v1/txt2img", new
        {
            prompt = "red heart", seed = 11, steps = 10, cfg_scale = 3, width = 32, height = 32, sampler_name = "DDIM",
            enable_hr = true, hr_scale = 2, hr_second_pass_steps = 7, denoising_strength = 0.7,
        });
        var img = DecodePng(res.GetProperty("images")[0].GetString()!, out var text);
        Assert.Equal((64, 64), (img.Width, img.Height));
        Assert.Contains("Hires upscale: 2.0, Hires steps: 7, Hires upscaler: Latent", text["parameters"]);

        TorchSetup.Ensure();
        using var pipe = StableDiffusionPipeline.FromPretrained(TestServer.EmbeddedModel);
        using var expected = CascadeGenerator.Generate(pipe, new CascadeRequest
        {
            Request = new GenerationRequest("red heart") { NegativePrompt = "", Seed = 11, Steps = 10, Guidance = 3, Width = 64, Height = 64 },
            BaseSize = new PixelSize(32, 32), PivotStrength = 0.7,
            StageOverrides = new Dictionary<int, StageSettings> { [1] = new(10, 0.7) }, // 7 steps run, as A1111's hires pass
        });
        Assert.Equal(expected.Images[0].Pixels, img.Pixels);
    }

    [Fact]
    public async Task Img2ImgUpscalesByTheRatioOfWidthToTheInitImage()
    {
        var first = await PostOk("/sdapi/v1/txt2img", new { prompt = "star", seed = 1, steps = 3, width = 32, height = 32, sampler_name = "Euler a" });
        var init = first.GetProperty("images")[0].GetString()!;
        var res = await PostOk("/sdapi/v1/img2img", new
        {
            init_images = new[] { "data:image/png;base64," + init }, prompt = "star", seed = 2, steps = 10, denoising_strength = 0.5,
            width = 64, height = 64, sampler_name = "DDIM",
        });
        Assert.Equal(["images", "parameters", "info"], res.EnumerateObject().Select(p => p.Name));
        Assert.Equal(JsonValueKind.Null, res.GetProperty("parameters").GetProperty("init_images").ValueKind); // include_init_images false
        var img = DecodePng(res.GetProperty("images")[0].GetString()!, out _);
        Assert.Equal((64, 64), (img.Width, img.Height));
    }

    [Fact]
    public async Task ListsHaveA1111ItemShapesAndOptionsSwitchTheModel()
    {
        var models = JsonDocument.Parse(await S.Client.GetStringAsync("/sdapi/v1/sd-models")).RootElement;
        Assert.Equal(["title", "model_name", "hash", "sha256", "filename", "config"], models[0].EnumerateObject().Select(p => p.Name));
        Assert.Equal("emoji-base", models[0].GetProperty("title").GetString());

        var samplers = JsonDocument.Parse(await S.Client.GetStringAsync("/sdapi/v1/samplers")).RootElement;
        Assert.Equal(["name", "aliases", "options"], samplers[0].EnumerateObject().Select(p => p.Name));
        Assert.Contains("Euler a", samplers.EnumerateArray().Select(s => s.GetProperty("name").GetString()));

        var options = JsonDocument.Parse(await S.Client.GetStringAsync("/sdapi/v1/options")).RootElement;
        Assert.Equal("emoji-base", options.GetProperty("sd_model_checkpoint").GetString());
        var (status, body) = await Post("/sdapi/v1/options", """{"sd_model_checkpoint": "nope.safetensors [abc123]"}""");
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal(["error", "detail", "body", "errors"], body.EnumerateObject().Select(p => p.Name));
        (status, _) = await Post("/sdapi/v1/options", """{"sd_model_checkpoint": "emoji-base.safetensors [0123abcd]", "samples_format": "png"}""");
        Assert.Equal(HttpStatusCode.OK, status);

        var progress = JsonDocument.Parse(await S.Client.GetStringAsync("/sdapi/v1/progress")).RootElement;
        Assert.Equal(["progress", "eta_relative", "state", "current_image", "textinfo"], progress.EnumerateObject().Select(p => p.Name));
        Assert.Equal(["skipped", "interrupted", "stopping_generation", "job", "job_count", "job_timestamp", "job_no", "sampling_step", "sampling_steps"],
            progress.GetProperty("state").EnumerateObject().Select(p => p.Name));
        (status, body) = await Post("/sdapi/v1/interrupt", "");
        Assert.Equal(HttpStatusCode.OK, status);
    }

    [Theory]
    [InlineData("""{"prompt": "x", "steps": "many"}""", 422)]
    [InlineData("""{"prompt": "x", "width": 32, "height": 32, "steps": 2, "sampler_name": "Heun++"}""", 404)]
    [InlineData("""{"prompt": "x", "width": 30000, "height": 32}""", 422)]
    [InlineData("""{"prompt": "x", "override_settings": {"sd_model_checkpoint": "missing"}}""", 404)]
    [InlineData("""{"prompt": "x", "enable_hr": true, "width": 32, "height": 32, "steps": 2, "hr_upscaler": "R-ESRGAN 4x+"}""", 422)]
    [InlineData("""{"prompt": """, 422)]
    [InlineData("""[1, 2]""", 422)]
    public async Task MalformedTxt2ImgIsA4xxInA1111sErrorShape(string json, int expected)
    {
        var (status, body) = await Post("/sdapi/v1/txt2img", json);
        Assert.Equal(expected, (int)status);
        Assert.Equal(["error", "detail", "body", "errors"], body.EnumerateObject().Select(p => p.Name));
    }

    [Theory]
    [InlineData("""{"init_images": ["%%%not base64%%%"], "width": 64, "height": 64}""", 422)]
    [InlineData("""{"init_images": ["aGVsbG8="], "width": 64, "height": 64}""", 422)]
    [InlineData("""{"prompt": "no init images"}""", 404)]
    public async Task MalformedImg2ImgIsA4xx(string json, int expected)
    {
        var (status, body) = await Post("/sdapi/v1/img2img", json);
        Assert.Equal(expected, (int)status);
        Assert.Equal("HTTPException", body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task InterruptStopsTheRunningRequestAndItAnswersWithTheImagesItHas()
    {
        var run = S.Client.PostAsJsonAsync("/sdapi/v1/txt2img", new { prompt = "slow", seed = 1, steps = 400, width = 32, height = 32, sampler_name = "DDIM" });
        var end = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (true)
        {
            var p = JsonDocument.Parse(await S.Client.GetStringAsync("/sdapi/v1/progress")).RootElement;
            if (p.GetProperty("state").GetProperty("sampling_step").GetInt32() > 0) break;
            Assert.True(DateTime.UtcNow < end, "the request never started sampling");
            await Task.Delay(50);
        }
        (await S.Client.PostAsync("/sdapi/v1/interrupt", null)).EnsureSuccessStatusCode();
        using var r = await run;
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var res = JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(0, res.GetProperty("images").GetArrayLength());
        Assert.Equal(SelfCascade.Server.Jobs.JobStatus.Cancelled, S.Jobs.List(5).First(j => j.Origin == "a1111").Status);
    }
}
