using System.Text.Json;
using SelfCascade.Cascade;
using SelfCascade.IO;
using SelfCascade.Pipelines;
using SelfCascade.Schedulers;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Pipelines;

/// <summary>
/// The SD and SDXL tiny model folders, built once for the class (copies of the shared fixture models). The SDXL folder
/// carries the scheduler_config.json of stable-diffusion-xl-base-1.0 (as make_img2img.py's SDXL_SCHED): its
/// clip_sample/set_alpha_to_one false are what a switch to DDIM or DDPM reads.
/// </summary>
public sealed class TinyPipelineFolders : IDisposable
{
    private const string SdxlBaseSchedulerJson = """
        { "_class_name": "EulerDiscreteScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
          "clip_sample": false, "interpolation_type": "linear", "num_train_timesteps": 1000, "prediction_type": "epsilon",
          "sample_max_value": 1.0, "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1,
          "timestep_spacing": "leading", "trained_betas": null, "use_karras_sigmas": false }
        """;

    private readonly string _dir = Directory.CreateTempSubdirectory("sc-i2i-").FullName;
    public TinyPipelineFolders()
    {
        TorchSetup.Ensure();
        Sd = TinyModelFolders.BuildSd(Path.Combine(_dir, "sd"));
        Sdxl = TinyModelFolders.BuildSdxl(Path.Combine(_dir, "sdxl"));
        File.WriteAllText(Path.Combine(Sdxl, "scheduler", "scheduler_config.json"), SdxlBaseSchedulerJson);
    }
    public string Sd { get; }
    public string Sdxl { get; }
    public void Dispose() => Directory.Delete(_dir, true);
}

/// <summary>
/// Every scheduler we offer, SD and SDXL, through the self-cascade's two stages against diffusers 0.28.2
/// (tests/reference/img2img, made by make_img2img.py there): stage 0 = the text-to-image pipeline at 32x32 (seed 0),
/// stage 1 = the img2img pipeline on the bilinear x2 latent pivot at strength 0.6 and 0.3 (generator seed 1):
/// timesteps, the re-noised pivot (add_noise at the start index), the stage's final latents, the whole cascade
/// from the prompt, and one decoded image per family.
/// </summary>
public sealed class Img2ImgSchedulerParityTests(TinyPipelineFolders folders) : IClassFixture<TinyPipelineFolders>
{
    private const string Prompt = "a photo of a red circle";
    private const int Steps = 10;

    private static string ReferencePath(string file) => Path.Combine(Fixtures.RepoRoot, "tests", "reference", "img2img", file);
    private static readonly Lazy<JsonElement> Facts = new(() =>
        JsonDocument.Parse(File.ReadAllText(ReferencePath("img2img.json"))).RootElement.Clone());

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var model in new[] { "sd", "sdxl" })
            foreach (var name in SchedulerFactory.Names) data.Add(model, name);
        return data;
    }

    private static readonly (string Tag, double Strength)[] Strengths = [("60", 0.6), ("30", 0.3)];

    private static double GuidanceOf(string model) => model == "sd" ? 7.5 : 5.0;

    private StableDiffusionPipeline Load(string model, string scheduler) =>
        StableDiffusionPipeline.FromPretrained(model == "sd" ? folders.Sd : folders.Sdxl, new PipelineOptions { Scheduler = scheduler });

    private static double[] TimestepsOf(string key, string field) =>
        Facts.Value.GetProperty("runs").GetProperty(key).GetProperty(field).EnumerateArray().Select(e => e.GetDouble()).ToArray();

    [Fact]
    public void ReferenceCoversEverySchedulerWeOffer()
    {
        var runs = Facts.Value.GetProperty("runs");
        foreach (var model in new[] { "sd", "sdxl" })
            foreach (var name in SchedulerFactory.Names)
                Assert.True(runs.TryGetProperty($"{model}_{name}", out _), $"no reference for {model} {name}");
        Assert.Equal("0.28.2", Facts.Value.GetProperty("versions").GetProperty("diffusers").GetString());
        // The reference's SDXL folder config is the one this class writes (DDIM/DDPM read its clip_sample false).
        var sdxl = Facts.Value.GetProperty("folder_scheduler_configs").GetProperty("sdxl");
        Assert.False(sdxl.GetProperty("clip_sample").GetBoolean());
        Assert.False(sdxl.GetProperty("set_alpha_to_one").GetBoolean());
        Assert.Equal("leading", sdxl.GetProperty("timestep_spacing").GetString());
    }

    /// <summary>
    /// Stage 0 (text-to-image with the scheduler, seed 0) against diffusers' pipeline; then stage 1 alone, from
    /// diffusers' stage-0 latents: the img2img timesteps and begin index, the re-noised pivot and the stage's final
    /// latents, for both strengths.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void StageMatchesDiffusersImg2Img(string model, string scheduler)
    {
        string key = $"{model}_{scheduler}";
        double guidance = GuidanceOf(model);
        using var pipe = Load(model, scheduler);
        using var f = SafeTensorsFile.Open(ReferencePath("img2img.safetensors"));
        using var baseLatents = f.Read($"{key}_base");
        var report = new ParityReport();
        using (var baseResult = pipe.Generate(new GenerationRequest(Prompt) { Seed = 0, Steps = Steps, Guidance = guidance, Width = 32, Height = 32 }))
            report.Close(baseResult.Latents, baseLatents, $"{key} stage 0 (text-to-image) latents");
        Assert.Equal(TimestepsOf(key, "base_timesteps"), pipe.Scheduler.Timesteps.ToArray());
        using var emb = pipe.EncodePrompt(Prompt, null, true);
        foreach (var (tag, strength) in Strengths)
        {
            var expected = TimestepsOf(key, $"s{tag}_timesteps");
            var (timesteps, _) = pipe.Scheduler.GetImg2ImgTimesteps(Steps, strength);
            if (!timesteps.SequenceEqual(expected))
                report.Fail($"s{tag} timesteps [{string.Join(",", timesteps)}] vs diffusers [{string.Join(",", expected)}]");
            else
            {
                // prepare_latents: noise = randn(pivot.shape, generator seed 1); add_noise(pivot, noise, timesteps[:1]).
                using var pivot = Pivot.Upsample(baseLatents, 32, 32);
                using var g = new Generator(1);
                using var noise = randn(pivot.shape, generator: g);
                using var start = pipe.Scheduler.AddNoise(pivot, noise, timesteps[0]);
                report.Close(start, f.Read($"{key}_s{tag}_start"), $"{key} s{tag} re-noised pivot");
            }
            var request = new CascadeRequest { Request = new GenerationRequest(Prompt) { Steps = Steps, Guidance = guidance } };
            var stage = new ScaleStage(1, new PixelSize(64, 64), pipe.VaeScaleFactor, Steps, strength, guidance, 2, 2, 4, 0.09);
            using var latents = CascadeGenerator.RunStage(pipe, request, baseLatents, new PixelSize(32, 32), stage, emb, 1, null, default, 2);
            report.Close(latents, f.Read($"{key}_s{tag}_latents"), $"{key} s{tag} stage latents");
            if (f.Entries.ContainsKey($"{key}_s{tag}_image"))
            {
                using var image = pipe.DecodeLatents(latents);
                using var unit = (image / 2 + 0.5).clamp(0, 1);
                report.Close(unit, f.Read($"{key}_s{tag}_image"), $"{key} s{tag} decoded image");
            }
        }
        report.ThrowIfAny();
    }

    /// <summary>
    /// The whole cascade from the prompt (the library entry point the CLI calls, stage r seeded seed + r) equals
    /// diffusers' text-to-image pipeline (seed 0) followed by its img2img pipeline (seed 1) on the upsampled latent.
    /// Slow in aggregate (36 cascades): run with <c>--filter "FullyQualifiedName~Img2ImgSchedulerParityTests"</c>.
    /// </summary>
    [Theory]
    [Trait("Category", "Slow")]
    [MemberData(nameof(Cases))]
    public void WholeCascadeMatchesDiffusersTextToImageThenImg2Img(string model, string scheduler)
    {
        string key = $"{model}_{scheduler}";
        double guidance = GuidanceOf(model);
        using var pipe = Load(model, scheduler);
        using var f = SafeTensorsFile.Open(ReferencePath("img2img.safetensors"));
        var report = new ParityReport();
        foreach (var (tag, strength) in Strengths)
        {
            using var result = CascadeGenerator.Generate(pipe, new CascadeRequest
            {
                Request = new GenerationRequest(Prompt) { Seed = 0, Steps = Steps, Guidance = guidance, Width = 64, Height = 64 },
                BaseSize = new PixelSize(32, 32), PivotStrength = strength,
            });
            Assert.Equal(2, result.Stages.Count);
            report.Close(result.Latents, f.Read($"{key}_s{tag}_latents"), $"{key} s{tag} cascade latents (seed 0 base, seed 1 stage)");
        }
        report.ThrowIfAny();
    }
}
