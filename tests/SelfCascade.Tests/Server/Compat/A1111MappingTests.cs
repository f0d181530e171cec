using System.Text.Json;
using SelfCascade.Cascade;
using SelfCascade.IO;
using SelfCascade.Pipelines;
using SelfCascade.Server.Compat;
using SelfCascade.Server.Compat.A1111;

namespace SelfCascade.Tests.Server.Compat;

/// <summary>
/// A1111 requests mapped onto ours as pure functions: sampler names, the hires fix as a cascade (steps as A1111's
/// hires pass counts them), seeds per image, the infotext and the info JSON (Processed.js() keys, in order).
/// </summary>
public class A1111MappingTests
{
    // The embedded emoji model's geometry: native 32 px, pixel space, 3 UNet levels.
    private static readonly ModelGeometry Emoji = new(32, 1, 3, ModelFamily.StableDiffusion2);

    [Theory]
    [InlineData("Euler a", null, "euler-a")]
    [InlineData("k_euler_a", null, "euler-a")]
    [InlineData("Euler", "Automatic", "euler")]
    [InlineData("DPM++ 2M", null, "dpm++2m-karras")]        // A1111: DPM++ 2M's default scheduler is Karras
    [InlineData("DPM++ 2M", "Uniform", "dpm++2m")]
    [InlineData("DPM++ 2M Karras", null, "dpm++2m-karras")] // pre-1.9 combined name
    [InlineData("DDIM", null, "ddim")]
    [InlineData("PLMS", null, "pndm")]
    [InlineData("UniPC", null, "unipc")]
    [InlineData("LMS", null, "lms")]
    public void SamplerNamesMapOntoOurSchedulers(string sampler, string? scheduler, string cli) =>
        Assert.Equal(cli, A1111Samplers.Resolve(sampler, scheduler).CliName);

    [Fact]
    public void UnknownSamplersAre404AndImpossibleSchedulers422()
    {
        Assert.Equal(404, Assert.Throws<A1111RequestException>(() => A1111Samplers.Resolve("DPM++ SDE", null)).Status);
        Assert.Equal(422, Assert.Throws<A1111RequestException>(() => A1111Samplers.Resolve("Euler", "Polyexponential")).Status);
        Assert.Equal(422, Assert.Throws<A1111RequestException>(() => A1111Samplers.Resolve("DDIM", "Karras")).Status);
        // Expressible only as a scheduler config, not a CLI name: the job engine cannot take it.
        Assert.Null(A1111Samplers.Resolve("Euler", "SGM Uniform").CliName);
        var modelDefault = new SelfCascade.Schedulers.SchedulerConfig { ClassName = "DDIMScheduler", TimestepSpacing = "leading", StepsOffset = 1 };
        var c = A1111Samplers.Resolve("Euler", "SGM Uniform").Configure(modelDefault);
        Assert.Equal(("EulerDiscreteScheduler", "trailing"), (c.ClassName, c.TimestepSpacing));
    }

    [Theory]
    [InlineData(7, 0.7, 10)]   // int(10 * 0.7) = 7
    [InlineData(10, 0.75, 14)] // int(13 * 0.75) = 9, int(14 * 0.75) = 10
    [InlineData(20, 1.0, 20)]
    [InlineData(10, 0.3, 34)]  // int(33 * 0.3) = 9 (33 * 0.3 = 9.899...), int(34 * 0.3) = 10
    public void HiresStepsAreTheStepsTheSecondPassRuns(int steps, double strength, int schedule)
    {
        Assert.Equal(schedule, A1111Mapping.ScheduleForSteps(steps, strength));
        Assert.Equal(steps, CascadeMath.Img2ImgSteps(schedule, strength));
    }

    [Fact]
    public void Txt2ImgWithHiresIsOurCascadeFromTheFirstPassSize()
    {
        var r = JsonSerializer.Deserialize<A1111Txt2ImgRequest>("""
            {"prompt": "red heart", "negative_prompt": "blurry", "seed": 100, "steps": 10, "cfg_scale": 3, "width": 32, "height": 32,
             "sampler_name": "DDIM", "batch_size": 2, "n_iter": 2, "enable_hr": true, "hr_scale": 4, "hr_second_pass_steps": 7,
             "denoising_strength": 0.7, "unknown_field": [1, 2]}
            """, A1111Json.Options)!;
        var plan = A1111Mapping.Txt2Img(r, "emoji-base", Emoji);
        Assert.Equal([100L, 101, 102, 103], plan.Seeds);
        var t = plan.Tasks[3].Request;
        Assert.Equal(GenerationMethod.SelfCascade, t.Method);
        Assert.Equal(new PixelSize(32, 32), t.BaseSize);
        Assert.Equal((128, 128, 1, 103L, 10, 3.0), (t.Request.Width, t.Request.Height, t.Request.NumImages, t.Request.Seed, t.Request.Steps, t.Request.Guidance!.Value));
        Assert.Equal("blurry", t.Request.NegativePrompt);
        // 32 -> 64 -> 128: both later stages re-noise at 0.7 and run exactly 7 steps (a 10-step schedule).
        Assert.Equal([1, 2], t.StageOverrides.Keys.Order());
        Assert.All(t.StageOverrides.Values, s => Assert.Equal(new StageSettings(10, 0.7), s));
        Assert.Equal(0.7, t.PivotStrength);
        Assert.Equal("ddim", plan.Sampler.CliName);

        Assert.Equal("red heart\nNegative prompt: blurry\nSteps: 10, Sampler: DDIM, CFG scale: 3.0, Seed: 102, Size: 32x32, Model: emoji-base, " +
            "Denoising strength: 0.7, Hires upscale: 4.0, Hires steps: 7, Hires upscaler: Latent, Version: SelfCascade", plan.Infotext(2));
    }

    [Fact]
    public void Txt2ImgWithoutHiresIsDirectAtTheAskedSizeAndARandomSeedIsDrawnOnce()
    {
        var r = new A1111Txt2ImgRequest { Prompt = "cat", Width = 64, Height = 32, Steps = 5, Seed = -1, BatchSize = 3 };
        var plan = A1111Mapping.Txt2Img(r, "emoji-base", Emoji, random: new Random(1));
        Assert.All(plan.Tasks, t => Assert.Equal(GenerationMethod.Direct, t.Request.Method));
        Assert.Equal((64, 32), (plan.Tasks[0].Request.Request.Width, plan.Tasks[0].Request.Request.Height));
        long s0 = plan.Seeds[0];
        Assert.InRange(s0, 0, 4294967293);
        Assert.Equal([s0, s0 + 1, s0 + 2], plan.Seeds);
        Assert.Equal("euler", plan.Sampler.CliName); // the default sampler_index "Euler"
        Assert.Equal("Euler", plan.SamplerName);
        Assert.DoesNotContain("Denoising strength", plan.Infotext(0));
    }

    [Fact]
    public void InfoIsProcessedJsWithA1111sKeysInOrder()
    {
        var r = new A1111Txt2ImgRequest { Prompt = "a, b: c", Width = 32, Height = 32, Steps = 4, Seed = 9, EnableHr = true, HrScale = 2 };
        var plan = A1111Mapping.Txt2Img(r, "emoji-base", Emoji);
        using var info = JsonDocument.Parse(plan.InfoJson());
        Assert.Equal(["prompt", "all_prompts", "negative_prompt", "all_negative_prompts", "seed", "all_seeds", "subseed", "all_subseeds",
            "subseed_strength", "width", "height", "sampler_name", "cfg_scale", "steps", "batch_size", "restore_faces", "face_restoration_model",
            "sd_model_name", "sd_model_hash", "sd_vae_name", "sd_vae_hash", "seed_resize_from_w", "seed_resize_from_h", "denoising_strength",
            "extra_generation_params", "index_of_first_image", "infotexts", "styles", "job_timestamp", "clip_skip",
            "is_using_inpainting_conditioning", "version"], info.RootElement.EnumerateObject().Select(p => p.Name));
        Assert.Equal(9, info.RootElement.GetProperty("seed").GetInt64());
        Assert.Equal(2.0, info.RootElement.GetProperty("extra_generation_params").GetProperty("Hires upscale").GetDouble());
        // A prompt with ',' or ':' stays raw in the first line; parameter values with them are JSON-quoted (A1111's quote()).
        Assert.StartsWith("a, b: c\nSteps: 4,", info.RootElement.GetProperty("infotexts")[0].GetString());
        Assert.Equal("\"x, y\"", A1111Plan.Quote("x, y"));
        Assert.Equal("plain", A1111Plan.Quote("plain"));
    }

    [Theory]
    [InlineData(7.0, "7.0")]
    [InlineData(7.5, "7.5")]
    [InlineData(0.75, "0.75")]
    [InlineData(1e-5, "1e-05")]
    public void FloatsPrintAsPythonStr(double d, string s) => Assert.Equal(s, A1111Mapping.PyFloat(d));

    [Fact]
    public void BadValuesAre422()
    {
        Assert.Equal(422, Assert.Throws<A1111RequestException>(() => A1111Mapping.Txt2Img(new A1111Txt2ImgRequest { Steps = 0 }, "m", Emoji)).Status);
        Assert.Equal(422, Assert.Throws<A1111RequestException>(() => A1111Mapping.Txt2Img(new A1111Txt2ImgRequest { CfgScale = double.NaN }, "m", Emoji)).Status);
        Assert.Equal(422, Assert.Throws<A1111RequestException>(() => A1111Mapping.Txt2Img(new A1111Txt2ImgRequest { BatchSize = 100 }, "m", Emoji)).Status);
        Assert.Equal(422, Assert.Throws<A1111RequestException>(() => A1111Mapping.Txt2Img(
            new A1111Txt2ImgRequest { Width = 32, Height = 32, EnableHr = true, HrUpscaler = "R-ESRGAN 4x+" }, "m", Emoji)).Status);
        Assert.Equal(422, Assert.Throws<A1111RequestException>(() => A1111Json.Parse<A1111Txt2ImgRequest>("""{"steps": "many"}""")).Status);
        Assert.Equal(404, Assert.Throws<A1111RequestException>(() => A1111Mapping.Img2Img(new A1111Img2ImgRequest(), "m")).Status);
        Assert.Equal(422, Assert.Throws<A1111RequestException>(() => A1111Mapping.Img2Img(new A1111Img2ImgRequest { InitImages = ["not base64!"] }, "m")).Status);
        Assert.Equal(422, Assert.Throws<A1111RequestException>(() => A1111Mapping.Img2Img(new A1111Img2ImgRequest { InitImages = ["http://example.com/a.png"] }, "m")).Status);
    }
}
