using SelfCascade.Tests.Support;
using SelfCascade.Video.Pipelines;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Video.Unet3D;

/// <summary>
/// modelscope_tiny/pipeline_t2v: TextToVideoSDPipeline("a blue square sliding to the right", negative "", 8 frames,
/// 64x64, 5 DDIM steps 801..1, guidance 6, seed 2) from the prompt string through every component: embeddings,
/// initial noise, latents after step 0, final latents, decoded frames.
/// </summary>
public sealed class TextToVideoSdParityTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-t2v-").FullName;
    public TextToVideoSdParityTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    private const string Prompt = "a blue square sliding to the right";

    [Fact]
    public void EmbeddingsLatentsAndFramesMatchDiffusers()
    {
        using var pipe = TextToVideoSdPipeline.FromPretrained(Unet3DFixtures.BuildFolder(_dir));
        using var f = Unet3DFixtures.Open("pipeline_t2v", "io.safetensors");
        using var scope = NewDisposeScope();
        var report = new ParityReport();
        using (var emb = pipe.EncodePrompt(Prompt, "", true))
        {
            report.Close(emb.Positive, f.Read("prompt_embeds"), "prompt_embeds");
            report.Close(emb.Negative!, f.Read("negative_prompt_embeds"), "negative_prompt_embeds");
            using var g = new Generator(2);
            var noise = pipe.InitialNoise(g, 1, 8, 64, 64);
            Parity.AssertEqual(noise, f.Read("initial_latents"), "initial_latents");
            pipe.Scheduler.SetTimesteps(5);
            Assert.Equal([801.0, 601, 401, 201, 1], pipe.Scheduler.Timesteps);
            var afterStep0 = pipe.Denoise(noise.clone(), [pipe.Scheduler.Timesteps[0]], emb, 6.0);
            report.Close(afterStep0, f.Read("latents_after_step0"), "latents_after_step0");
        }

        using var result = pipe.Generate(new TextToVideoSdRequest(Prompt)
            { NegativePrompt = "", Frames = 8, Width = 64, Height = 64, Steps = 5, Guidance = 6.0, Seed = 2 });
        report.Close(result.Latents, f.Read("latents_out"), "latents_out");
        var frames = result.FramesUnit();
        report.Close(frames, f.Read("frames_float"), "frames_float");
        report.ThrowIfAny();

        // The uint8 frames: round(clip(x) * 255), +-1 where the float sits at a rounding edge.
        var bytes = File.ReadAllBytes(Unet3DFixtures.ModelScope("pipeline_t2v", "frames_uint8.rgb"));
        var reference = tensor(bytes, [8, 64, 64, 3]).to(ScalarType.Int32);
        var ours = frames.mul(255.0).round().to(ScalarType.Int32);
        Assert.True((ours - reference).abs().max().item<int>() <= 1, "uint8 frames differ by more than 1");
    }

    [Fact]
    public void ChunkingTheCfgBatchGivesTheSameLatents()
    {
        using var pipe = TextToVideoSdPipeline.FromPretrained(Unet3DFixtures.BuildFolder(_dir));
        using var scope = NewDisposeScope();
        using var emb = pipe.EncodePrompt(Prompt, "", true);
        using var g = new Generator(5);
        var noise = pipe.InitialNoise(g, 1, 3, 32, 48);
        pipe.Scheduler.SetTimesteps(5);
        var ts = pipe.Scheduler.Timesteps.Take(2).ToList();
        var whole = pipe.Denoise(noise.clone(), ts, emb, 6.0);
        var split = pipe.Denoise(noise.clone(), ts, emb, 6.0, videosPerCall: 1);
        Parity.AssertClose(split, whole, "one video per UNet call vs the whole CFG batch");
    }

    [Fact]
    public void AnImageModelFolderIsNotATextToVideoFolder()
    {
        var e = Assert.Throws<InvalidDataException>(() => TextToVideoSdPipeline.FromPretrained(TinyModelFolders.BuildSd1(Path.Combine(_dir, "sd1"))));
        Assert.Contains("not a TextToVideoSDPipeline folder", e.Message);
        Assert.Contains("UNet2DConditionModel", e.Message);
    }
}
