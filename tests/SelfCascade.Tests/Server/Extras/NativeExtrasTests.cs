using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using SelfCascade.Imaging;
using SelfCascade.Server;
using SelfCascade.Server.Extras;
using SelfCascade.Server.Models;
using SelfCascade.Tests.Cli;

namespace SelfCascade.Tests.Server.Extras;

/// <summary>
/// serve --lora / --upsamplers through the native API: a job naming them gives the PNG `generate --lora FILE:SCALE` /
/// `--upsamplers DIR` writes (pixel for pixel), different from the plain run; the weights are restored after the job
/// (also after one that fails part way); unknown names are 400s listing the served ones; the table is validated at start.
/// </summary>
public sealed class NativeExtrasTests(ExtrasServerFixture f) : IClassFixture<ExtrasServerFixture>, IDisposable
{
    private readonly TestServer _s = f.Server;
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-extras-native-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static RgbImage Decode(byte[] png)
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, png);
            return RgbImage.Load(path);
        }
        finally { File.Delete(path); }
    }

    private async Task<(byte[] Png, JsonElement Job)> RunAsync(object body, string path = "/api/jobs")
    {
        var id = await _s.SubmitAsync(body, path);
        var job = await _s.WaitAsync(id);
        Assert.True(job.GetProperty("status").GetString() == "done", job.ToString());
        return (await _s.Client.GetByteArrayAsync($"/api/jobs/{id}/images/0"), job);
    }

    private RgbImage Cli(string name, params string[] extra)
    {
        var outPath = Path.Combine(_dir, name);
        var (code, _, err) = CliRunner.Run(["generate", "--model", f.Model, "--prompt", "a photo of a red circle", "--negative-prompt", "",
            "--seed", "0", "--steps", "4", "--size", "64x64", "--out", outPath, .. extra]);
        Assert.True(code == 0, err);
        return RgbImage.Load(outPath);
    }

    private static object Body(object? loras = null, string? upsamplers = null) => new
    {
        prompt = "a photo of a red circle", negative_prompt = "", seed = 0, steps = 4, size = "64x64", preview_every = 0, loras, upsamplers,
    };

    [Fact]
    public async Task LoraJobIsGeneratesPngAndTheWeightsComeBack()
    {
        var (loraPng, job) = await RunAsync(Body(loras: new[] { new { name = "style", scale = 0.75 } }));
        var cliLora = Cli("lora.png", "--lora", f.StyleLora + ":0.75");
        Assert.Equal(cliLora.Pixels, Decode(loraPng).Pixels);
        var meta = PngText.Read(loraPng);
        Assert.Equal("style:0.75", meta["loras"]);
        Assert.DoesNotContain(f.StyleLora, string.Join("\n", meta.Values));
        var recorded = Assert.Single(job.GetProperty("parameters").GetProperty("loras").EnumerateArray());
        Assert.Equal("style", recorded.GetProperty("name").GetString());

        // The next plain job is the plain run: the merge was undone.
        var (plainPng, _) = await RunAsync(Body());
        var cliPlain = Cli("plain.png");
        Assert.Equal(cliPlain.Pixels, Decode(plainPng).Pixels);
        Assert.NotEqual(cliPlain.Pixels, cliLora.Pixels);
        Assert.False(PngText.Read(plainPng).ContainsKey("loras"));
    }

    [Fact]
    public async Task UpsamplerJobIsGeneratesTunedCascade()
    {
        var (png, job) = await RunAsync(Body(upsamplers: "tuned"));
        var cliTuned = Cli("tuned.png", "--upsamplers", f.UpsamplerDir);
        Assert.Equal(cliTuned.Pixels, Decode(png).Pixels);
        Assert.Equal("tuned", PngText.Read(png)["upsamplers"]);
        Assert.Equal("tuned", job.GetProperty("parameters").GetProperty("upsamplers").GetString());
        Assert.Equal(2, job.GetProperty("stages").GetArrayLength());
        Assert.NotEqual(Cli("plain.png").Pixels, cliTuned.Pixels);

        // Both at once, as generate --lora --upsamplers.
        var (both, _) = await RunAsync(Body(loras: new[] { new { name = "style", scale = 1.0 } }, upsamplers: "tuned"));
        Assert.Equal(Cli("both.png", "--lora", f.StyleLora, "--upsamplers", f.UpsamplerDir).Pixels, Decode(both).Pixels);
    }

    [Fact]
    public async Task UpscaleJobTakesThemToo()
    {
        var input = new RgbImage(32, 32);
        for (int i = 0; i < input.Pixels.Length; i++) input.Pixels[i] = (byte)(i * 7 % 251);
        var inputPath = Path.Combine(_dir, "in.png");
        input.SavePng(inputPath);
        var (png, _) = await RunAsync(new
        {
            image = Convert.ToBase64String(await File.ReadAllBytesAsync(inputPath)), scale = 2, prompt = "a face", seed = 5, steps = 4,
            upsamplers = "tuned", loras = new[] { new { name = "style", scale = 0.5 } },
        }, "/api/upscale");
        var cliOut = Path.Combine(_dir, "up.png");
        var (code, _, err) = CliRunner.Run("upscale", "--model", f.Model, "--image", inputPath, "--scale", "2", "--prompt", "a face", "--seed", "5",
            "--steps", "4", "--upsamplers", f.UpsamplerDir, "--lora", f.StyleLora + ":0.5", "--out", cliOut);
        Assert.True(code == 0, err);
        Assert.Equal(RgbImage.Load(cliOut).Pixels, Decode(png).Pixels);
    }

    [Fact]
    public async Task AFailingLoraJobFailsAloneAndRestoresTheWeights()
    {
        // "style" merges, then "misfit" (SDXL keys) cannot: the job fails naming the keys, "style" is undone.
        var id = await _s.SubmitAsync(Body(loras: new[] { new { name = "style", scale = 1.0 }, new { name = "misfit", scale = 1.0 } }));
        var job = await _s.WaitAsync(id);
        Assert.Equal("failed", job.GetProperty("status").GetString());
        Assert.Contains("lora_te2_", job.GetProperty("error").GetString());
        var (plainPng, _) = await RunAsync(Body());
        Assert.Equal(Cli("plain.png").Pixels, Decode(plainPng).Pixels);
    }

    [Fact]
    public async Task ACancelledLoraJobRestoresTheWeights()
    {
        var twoSteps = new TaskCompletionSource();
        string? id = null;
        void Watch(SelfCascade.Server.Jobs.JobEvent e)
        {
            if (e.JobId == id && e.Type == SelfCascade.Server.Jobs.JobEventTypes.Progress && e.Phase == "denoise" && e.Step >= 2) twoSteps.TrySetResult();
        }
        _s.Jobs.EventPublished += Watch;
        try
        {
            id = await _s.SubmitAsync(new
            {
                prompt = "a photo of a red circle", seed = 0, steps = 400, size = "32x32", preview_every = 0, loras = new[] { new { name = "style", scale = 1.0 } },
            });
            await twoSteps.Task.WaitAsync(TimeSpan.FromMinutes(2));
            using var cancel = await _s.Client.PostAsync($"/api/jobs/{id}/cancel", null);
            Assert.Equal("cancelled", (await _s.WaitAsync(id)).GetProperty("status").GetString());
        }
        finally
        {
            _s.Jobs.EventPublished -= Watch;
        }
        var (plainPng, _) = await RunAsync(Body());
        Assert.Equal(Cli("plain.png").Pixels, Decode(plainPng).Pixels);
    }

    [Fact]
    public async Task UnknownNamesAre400sListingTheServedOnes()
    {
        foreach (var (body, expect) in new (object, string)[]
        {
            (Body(upsamplers: "nope"), "unknown upsamplers 'nope'; served: tuned"),
            (Body(loras: new[] { new { name = "../../etc/passwd", scale = 1.0 } }), "served: style, misfit"),
            (Body(loras: new[] { new { name = "style", scale = double.MaxValue } }), "scale"),
        })
        {
            using var response = await _s.Client.PostAsJsonAsync("/api/jobs", body);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode}: {text}");
            Assert.Contains(expect, JsonDocument.Parse(text).RootElement.GetProperty("error").GetString());
        }
        using var noName = await _s.Client.PostAsync("/api/jobs", JsonContent.Create(new { prompt = "x", loras = new[] { new { scale = 1.0 } } }));
        Assert.Equal(HttpStatusCode.BadRequest, noName.StatusCode);

        // GET /api/models lists names (and stage counts), never paths; /openapi.json describes the fields.
        var models = await _s.Client.GetStringAsync("/api/models");
        var root = JsonDocument.Parse(models).RootElement;
        Assert.Equal(["style", "misfit"], root.GetProperty("loras").EnumerateArray().Select(l => l.GetProperty("name").GetString()));
        var ups = Assert.Single(root.GetProperty("upsamplers").EnumerateArray());
        Assert.Equal(("tuned", 1), (ups.GetProperty("name").GetString(), ups.GetProperty("stages").GetInt32()));
        Assert.DoesNotContain(f.Dir, models);
        var openapi = await _s.Client.GetStringAsync("/openapi.json");
        Assert.Contains("\"loras\"", openapi);
        Assert.Contains("\"upsamplers\"", openapi);
    }

    [Fact]
    public void TheTableIsValidatedAtStart()
    {
        ServerOptions Options(UpsamplerSpec[] ups, LoraSpec[] loras) => new()
        {
            Models = [new ModelSpec("tiny", f.Model)], Port = 0, DataDir = Path.Combine(_dir, "data"), Upsamplers = ups, Loras = loras,
        };
        var missing = Path.Combine(_dir, "nowhere.safetensors");
        var e = Assert.Throws<ArgumentException>(() => ServerApp.Build(Options([], [new LoraSpec("gone", missing)])));
        Assert.StartsWith("--lora gone:", e.Message);
        var notLora = Path.Combine(f.UpsamplerDir, "upsamplers.safetensors");
        e = Assert.Throws<ArgumentException>(() => ServerApp.Build(Options([], [new LoraSpec("weights", notLora)])));
        Assert.StartsWith("--lora weights:", e.Message);
        var stray = Path.Combine(_dir, "stray.safetensors");
        using (var src = SelfCascade.IO.SafeTensorsFile.Open(f.StyleLora))
        {
            var tensors = src.Entries.Keys.ToDictionary(k => k, k => src.Read(k));
            tensors["something_else.weight"] = TorchSharp.torch.ones(3);
            SelfCascade.IO.SafeTensorsWriter.Save(stray, tensors);
            foreach (var t in tensors.Values) t.Dispose();
        }
        e = Assert.Throws<ArgumentException>(() => ServerApp.Build(Options([], [new LoraSpec("stray", stray)])));
        Assert.StartsWith("--lora stray:", e.Message);
        Assert.Contains("something_else.weight", e.Message);
        e = Assert.Throws<ArgumentException>(() => ServerApp.Build(Options([new UpsamplerSpec("empty", [_dir])], [])));
        Assert.StartsWith("--upsamplers empty:", e.Message);
        Assert.Contains("config.json is missing", e.Message);
        e = Assert.Throws<ArgumentException>(() => ServerApp.Build(Options([new UpsamplerSpec("a:b", [f.UpsamplerDir])], [])));
        Assert.Contains("name 'a:b'", e.Message);
        e = Assert.Throws<ArgumentException>(() => ServerApp.Build(Options([], [new LoraSpec("x", f.StyleLora), new LoraSpec("x", f.StyleLora)])));
        Assert.Contains("two LoRAs are named 'x'", e.Message);
    }

    [Fact]
    public void ServeParsesNameEqualsPaths()
    {
        var ups = SelfCascade.Cli.Commands.ServeCommand.ParseUpsamplers(["t=a/b, c/d"]);
        Assert.Equal("t", ups[0].Name);
        Assert.Equal([Path.GetFullPath("a/b"), Path.GetFullPath("c/d")], ups[0].Dirs);
        var loras = SelfCascade.Cli.Commands.ServeCommand.ParseLoras(["s=x.safetensors"]);
        Assert.Equal(new LoraSpec("s", Path.GetFullPath("x.safetensors")), loras[0]);
        Assert.Throws<ArgumentException>(() => SelfCascade.Cli.Commands.ServeCommand.ParseLoras(["x.safetensors"]));
    }
}
