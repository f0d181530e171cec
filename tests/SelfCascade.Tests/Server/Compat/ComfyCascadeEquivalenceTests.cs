using System.Text.Json.Nodes;
using SelfCascade.Cascade;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using SelfCascade.Server.Compat.ComfyUI;
using SelfCascade.Tests.Support;
using static SelfCascade.Tests.Server.Compat.ComfyWorkflows;

namespace SelfCascade.Tests.Server.Compat;

/// <summary>
/// The key fact of the ComfyUI mapping: LatentUpscaleBy ×2 (bilinear) + KSampler(seed s+1, steps N, denoise d) after a
/// base KSampler(seed s) IS one tuning-free cascade stage of ours (stage steps int(N/d), pivot strength d): the same
/// image, byte for byte, in pixel space (the embedded model) and in latent space (a tiny SD with a VAE), with a
/// deterministic and an ancestral sampler. And KSampler + our SelfCascade node is our whole cascade.
/// </summary>
public class ComfyCascadeEquivalenceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-comfy-eq-").FullName;

    public ComfyCascadeEquivalenceTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    internal sealed class Host(StableDiffusionPipeline pipe) : IComfyHost
    {
        public List<RgbImage> Images { get; } = [];
        public StableDiffusionPipeline Pipeline(string checkpoint) => pipe;
        public RgbImage LoadInputImage(string name) => throw new FileNotFoundException(name);
        public ComfyFileRef SaveImage(RgbImage image, string filenamePrefix, string type, IReadOnlyDictionary<string, string> pngText)
        {
            Images.Add(image);
            return new ComfyFileRef($"{filenamePrefix}_{Images.Count:00000}_.png", "", type);
        }
        public IStageFeatureInjector CreateUpsamplers(string name, StableDiffusionPipeline p) => throw new NotSupportedException();
        public IDisposable ApplyLoras(StableDiffusionPipeline p, IReadOnlyList<SelfCascade.Server.Extras.LoraFileUseByName> loras) => throw new NotSupportedException();
    }

    internal sealed class Events : IComfyEvents
    {
        public List<string> Log { get; } = [];
        public Dictionary<string, int> ProgressCount { get; } = [];
        public void Executing(string nodeId) => Log.Add($"executing {nodeId}");
        public void Progress(string nodeId, int value, int max) => ProgressCount[nodeId] = ProgressCount.GetValueOrDefault(nodeId) + 1;
        public void Executed(string nodeId, JsonObject output) => Log.Add($"executed {nodeId}");
    }

    internal static (List<RgbImage> Images, Events Events) RunGraph(StableDiffusionPipeline pipe, JsonObject prompt)
    {
        var catalog = new ComfyNodeCatalog(new ComfyCatalogContext { Checkpoints = ["m"] });
        var graph = ComfyGraph.Parse(prompt);
        var v = ComfyValidator.Validate(graph, catalog);
        Assert.True(v.Ok, v.ErrorBody().ToJsonString());
        var host = new Host(pipe);
        var events = new Events();
        ComfyExecutor.Execute(graph, v.Outputs, host, events);
        return (host.Images, events);
    }

    private static CascadeResult Cascade(StableDiffusionPipeline pipe, string prompt, long seed, int baseSize, int steps, double cfg,
        int stageSteps, double strength, int batch = 1) =>
        CascadeGenerator.Generate(pipe, new CascadeRequest
        {
            Request = new GenerationRequest(prompt)
            {
                NegativePrompt = "", Seed = seed, Steps = steps, Guidance = cfg, Width = 2 * baseSize, Height = 2 * baseSize, NumImages = batch,
            },
            BaseSize = new PixelSize(baseSize, baseSize), PivotStrength = strength,
            StageOverrides = new Dictionary<int, StageSettings> { [1] = new(Steps: stageSteps, Strength: strength) },
        });

    [Fact]
    public void HiresFixGraphEqualsOurCascadeStageOnTheEmbeddedModel()
    {
        using var pipe = StableDiffusionPipeline.FromPretrained(Path.Combine(Fixtures.RepoRoot, "models", "emoji-base"));
        // KSampler(steps 7, denoise 0.7): ComfyUI's schedule of int(7 / 0.7) = 10 steps, the last 7 run =
        // our stage with 10 steps at strength 0.7 (get_timesteps: int(10 * 0.7) = 7).
        using var expected = Cascade(pipe, "red heart", seed: 11, baseSize: 32, steps: 10, cfg: 3.0, stageSteps: 10, strength: 0.7);
        var (images, events) = RunGraph(pipe, HiresFix("m", "red heart", 11, 32, 10, 3.0, 7, 0.7));

        Assert.Single(images);
        Assert.Equal(64, images[0].Width);
        Assert.Equal(expected.Images[0].Pixels, images[0].Pixels);
        Assert.Equal(10, events.ProgressCount["3"]);
        Assert.Equal(7, events.ProgressCount["11"]);
        Assert.Equal(["executing 4", "executing 6", "executing 7", "executing 5", "executing 3", "executing 10", "executing 11",
            "executing 8", "executing 9", "executed 9"], events.Log);
    }

    [Fact]
    public void HiresFixGraphEqualsOurCascadeStageInLatentSpaceWithAnAncestralSampler()
    {
        var folder = TinyModelFolders.BuildSd(Path.Combine(_dir, "sd"));
        using var pipe = StableDiffusionPipeline.FromPretrained(folder, new PipelineOptions { Scheduler = "euler-a" });
        int b = pipe.NativeSize;
        // Euler ancestral draws noise every step from the stage's generator: the graph must continue the same generator.
        using var expected = Cascade(pipe, "a castle", seed: 5, baseSize: b, steps: 6, cfg: 7.5, stageSteps: 10, strength: 0.6, batch: 2);
        var (images, _) = RunGraph(pipe, HiresFix("m", "a castle", 5, b, 6, 7.5, 6, 0.6, sampler: "euler_ancestral", batch: 2));

        Assert.Equal(2, images.Count);
        Assert.Equal(2 * b, images[0].Width);
        for (int i = 0; i < 2; i++) Assert.Equal(expected.Images[i].Pixels, images[i].Pixels);
    }

    [Fact]
    public void KSamplerThenTheSelfCascadeNodeEqualsOurWholeCascade()
    {
        using var pipe = StableDiffusionPipeline.FromPretrained(Path.Combine(Fixtures.RepoRoot, "models", "emoji-base"));
        using var expected = CascadeGenerator.Generate(pipe, new CascadeRequest
        {
            Request = new GenerationRequest("green apple") { NegativePrompt = "", Seed = 3, Steps = 8, Guidance = 3.0, Width = 128, Height = 128 },
        });
        Assert.Equal(3, expected.Stages.Count); // 32 -> 64 -> 128
        var p = HiresFix("m", "green apple", 3, 32, 8, 3.0, 8, 0.5);
        p.Remove("10");
        p["11"] = Node("SelfCascade", new()
        {
            ["seed"] = 3, ["steps"] = 8, ["cfg"] = 3.0, ["sampler_name"] = "ddim", ["scheduler"] = "normal",
            ["model"] = Link("4", 0), ["positive"] = Link("6", 0), ["negative"] = Link("7", 0), ["samples"] = Link("3", 0),
            ["width"] = 128, ["height"] = 128, ["pivot_strength"] = 0.0, ["upsamplers"] = "none",
        });
        var (images, events) = RunGraph(pipe, p);

        Assert.Equal(expected.Images[0].Pixels, Assert.Single(images).Pixels);
        // One progress event per denoising step of the later stages (StageReport.Steps = steps run).
        Assert.Equal(expected.Stages.Skip(1).Sum(s => s.Steps), events.ProgressCount["11"]);
    }

    [Fact]
    public void ASamplerChoiceIsUndoneAfterTheGraphSoTheResidentModelKeepsItsScheduler()
    {
        using var pipe = StableDiffusionPipeline.FromPretrained(Path.Combine(Fixtures.RepoRoot, "models", "emoji-base"));
        var before = pipe.Scheduler.Config;
        RunGraph(pipe, HiresFix("m", "star", 1, 32, 3, 3.0, 2, 0.7, sampler: "dpmpp_2m", scheduler: "karras"));
        Assert.Equal(before.ClassName, pipe.Scheduler.Config.ClassName);
        Assert.Equal(before.UseKarrasSigmas, pipe.Scheduler.Config.UseKarrasSigmas);
    }
}
