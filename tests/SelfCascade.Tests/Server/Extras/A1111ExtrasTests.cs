using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using SelfCascade.Cascade;
using SelfCascade.Cascade.Upsamplers;
using SelfCascade.Checkpoints.Lora;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using SelfCascade.Server.Compat.A1111;

namespace SelfCascade.Tests.Server.Extras;

/// <summary>
/// A1111's LoRA surface: GET /sdapi/v1/loras (name, alias, path = the served name, metadata), the prompt syntax
/// &lt;lora:NAME:TE[:UNET]&gt; stripped from the prompt and applied (the image equals the library's with the LoRA merged
/// and the stripped prompt), and override_settings.selfcascade_upsamplers for the hires fix (= the tuned cascade).
/// </summary>
public sealed class A1111ExtrasTests(ExtrasServerFixture f) : IClassFixture<ExtrasServerFixture>
{
    private TestServer S => f.Server;

    private async Task<(HttpStatusCode Status, JsonElement Body)> Post(string path, object body)
    {
        using var r = await S.Client.PostAsJsonAsync(path, body);
        return (r.StatusCode, JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    private async Task<(RgbImage Image, string Infotext)> Txt2Img(object body)
    {
        var (status, res) = await Post("/sdapi/v1/txt2img", body);
        Assert.True(status == HttpStatusCode.OK, res.ToString());
        var bytes = Convert.FromBase64String(res.GetProperty("images")[0].GetString()!);
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, bytes);
            return (RgbImage.Load(path), PngText.Read(bytes)["parameters"]);
        }
        finally { File.Delete(path); }
    }

    private RgbImage Library(string prompt, IReadOnlyList<LoraFileUse> loras, Func<StableDiffusionPipeline, CascadeRequest> request)
    {
        using var pipe = StableDiffusionPipeline.FromPretrained(f.Model);
        using var merged = LoraStack.Apply(pipe, loras);
        var r = request(pipe);
        using var result = CascadeGenerator.Generate(pipe, r);
        Assert.Equal(prompt, r.Request.Prompt);
        return result.Images[0];
    }

    private static GenerationRequest Gen(string prompt, int size) =>
        new(prompt) { NegativePrompt = "", Seed = 4, Steps = 4, Guidance = 7, Width = size, Height = size };

    [Fact]
    public async Task LorasListHasTheExtensionsShapeWithNamesNotPaths()
    {
        var text = await S.Client.GetStringAsync("/sdapi/v1/loras");
        var list = JsonDocument.Parse(text).RootElement.EnumerateArray().ToList();
        Assert.Equal(["style", "misfit"], list.Select(l => l.GetProperty("name").GetString()));
        Assert.Equal(["name", "alias", "path", "metadata"], list[0].EnumerateObject().Select(p => p.Name));
        Assert.Equal("style", list[0].GetProperty("path").GetString());
        Assert.DoesNotContain("reference", text);
    }

    [Fact]
    public async Task PromptTagIsStrippedAndApplied()
    {
        const string tagged = "a photo of a red circle <lora:style:0.75>";
        const string stripped = "a photo of a red circle ";
        var (img, infotext) = await Txt2Img(new { prompt = tagged, negative_prompt = "", seed = 4, steps = 4, cfg_scale = 7, width = 32, height = 32, sampler_name = "DDIM" });
        var expected = Library(stripped, [new LoraFileUse(f.StyleLora, 0.75)], _ => new CascadeRequest { Request = Gen(stripped, 32), Method = GenerationMethod.Direct });
        Assert.Equal(expected.Pixels, img.Pixels);
        Assert.StartsWith(tagged + "\n", infotext); // A1111's infotext keeps the prompt as written

        // Without the tag: the plain image (the weights were restored), which differs.
        var (plain, _) = await Txt2Img(new { prompt = stripped, negative_prompt = "", seed = 4, steps = 4, cfg_scale = 7, width = 32, height = 32, sampler_name = "DDIM" });
        var expectedPlain = Library(stripped, [], _ => new CascadeRequest { Request = Gen(stripped, 32), Method = GenerationMethod.Direct });
        Assert.Equal(expectedPlain.Pixels, plain.Pixels);
        Assert.NotEqual(plain.Pixels, img.Pixels);

        // disable_extra_networks: stripped, not applied.
        var (disabled, _) = await Txt2Img(new { prompt = tagged, negative_prompt = "", seed = 4, steps = 4, cfg_scale = 7, width = 32, height = 32, sampler_name = "DDIM", disable_extra_networks = true });
        Assert.Equal(expectedPlain.Pixels, disabled.Pixels);
    }

    [Fact]
    public async Task TextEncoderAndUnetMultipliersAreSeparate()
    {
        const string stripped = "a photo of a red circle";
        var (img, _) = await Txt2Img(new { prompt = "<lora:style:0.25:1.5>" + stripped, negative_prompt = "", seed = 4, steps = 4, cfg_scale = 7, width = 32, height = 32, sampler_name = "DDIM" });
        // A1111: the first number is the text encoder's, the second the UNet's.
        var expected = Library(stripped, [new LoraFileUse(f.StyleLora, UnetScale: 1.5, TextEncoderScale: 0.25)],
            _ => new CascadeRequest { Request = Gen(stripped, 32), Method = GenerationMethod.Direct });
        Assert.Equal(expected.Pixels, img.Pixels);
        var swapped = Library(stripped, [new LoraFileUse(f.StyleLora, UnetScale: 0.25, TextEncoderScale: 1.5)],
            _ => new CascadeRequest { Request = Gen(stripped, 32), Method = GenerationMethod.Direct });
        Assert.NotEqual(swapped.Pixels, img.Pixels);
    }

    [Fact]
    public async Task HiresFixTakesTheServedUpsamplers()
    {
        const string prompt = "a photo of a red circle";
        var (img, infotext) = await Txt2Img(new
        {
            prompt, negative_prompt = "", seed = 4, steps = 4, cfg_scale = 7, width = 32, height = 32, sampler_name = "DDIM",
            enable_hr = true, hr_scale = 2, denoising_strength = 0.5, override_settings = new Dictionary<string, object> { ["selfcascade_upsamplers"] = "tuned" },
        });
        Assert.Contains("SelfCascade upsamplers: tuned", infotext);
        CascadeRequest Hires(StableDiffusionPipeline pipe, IStageFeatureInjector? injector) => new()
        {
            Request = Gen(prompt, 64), BaseSize = new PixelSize(32, 32), PivotStrength = 0.5,
            StageOverrides = new Dictionary<int, StageSettings> { [1] = new(8, 0.5) }, Injector = injector, // 4 steps run, as A1111's hires pass
        };
        using var pipe = StableDiffusionPipeline.FromPretrained(f.Model);
        using (var injector = FeatureUpsamplerInjector.FromCheckpoints([f.UpsamplerDir], pipe.Unet, new FeatureUpsamplerInjectorOptions(), pipe.DType))
        using (var tuned = CascadeGenerator.Generate(pipe, Hires(pipe, injector)))
            Assert.Equal(tuned.Images[0].Pixels, img.Pixels);
        using var plain = CascadeGenerator.Generate(pipe, Hires(pipe, null));
        Assert.NotEqual(plain.Images[0].Pixels, img.Pixels);
    }

    [Fact]
    public async Task UnknownNamesAndUnsupportedNetworksAre422s()
    {
        var cases = new (object Body, string Expect)[]
        {
            (new { prompt = "x <lora:nope:1>", steps = 2, width = 32, height = 32 }, "unknown LoRA 'nope'; served: style, misfit"),
            (new { prompt = "x <hypernet:h:1>", steps = 2, width = 32, height = 32 }, "not supported"),
            (new { prompt = "x <lora:style:big>", steps = 2, width = 32, height = 32 }, "'big' is not a number"),
            (new { prompt = "x", steps = 2, width = 32, height = 32, enable_hr = true, override_settings = new Dictionary<string, object> { ["selfcascade_upsamplers"] = "nope" } },
                "unknown upsamplers 'nope'; served: tuned"),
            (new { prompt = "x", steps = 2, width = 32, height = 32, override_settings = new Dictionary<string, object> { ["selfcascade_upsamplers"] = "tuned" } }, "needs the hires fix"),
        };
        foreach (var (body, expect) in cases)
        {
            var (status, res) = await Post("/sdapi/v1/txt2img", body);
            Assert.True(status == HttpStatusCode.UnprocessableEntity, $"{(int)status}: {res}");
            Assert.Contains(expect, res.GetProperty("detail").GetString());
        }
    }

    [Fact]
    public void ParseFollowsExtraNetworksParsePrompt()
    {
        var (prompt, loras) = A1111ExtraNetworks.Parse("a <lora:one:0.5> b <lyco:two> c <lora:three:te=0.2:unet=0.9>");
        Assert.Equal("a  b  c ", prompt);
        Assert.Equal([("one", 0.5, 0.5), ("two", 1.0, 1.0), ("three", 0.9, 0.2)], loras.Select(l => (l.Name, l.Scale, l.TextEncoder)));
        Assert.Equal("no tags <here>", A1111ExtraNetworks.Parse("no tags <here>").Prompt);
    }
}
