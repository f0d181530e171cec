using SelfCascade.Cascade.Upsamplers;
using SelfCascade.Cli;
using SelfCascade.Cli.Commands;
using SelfCascade.Evaluation;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Cli;
using SelfCascade.Tests.Support;
using SelfCascade.Tests.Upsamplers;
using SelfCascade.Tests.Video.Unet3D;
using SelfCascade.Video.Evaluation;
using SelfCascade.Video.Pipelines;

namespace SelfCascade.Tests.Video.Evaluation;

/// <summary>
/// bench-video's tuned rows (self-cascade+lite / +full: upsampler sets per cascade stage, the same prompts, seeds and
/// noise as the tuning-free row) and --direct-max-scale, on the embedded emoji model and motion adapter (native 32 px)
/// with two tiny synthetic clips. A zero-initialised set adds exactly nothing, so its row's frames are the tuning-free
/// row's byte for byte; a perturbed set changes them.
/// </summary>
public sealed class VideoBenchmarkTunedTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-benchvid-tuned-").FullName;
    public VideoBenchmarkTunedTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    private static VideoPipeline EmbeddedPipe() =>
        VideoPipeline.FromPretrained(ModelOption.EmbeddedModelDir()!, GenerateVideoCommand.EmbeddedMotionDir());

    /// <summary>A lite set for the embedded UNet: zero (fresh) or perturbed; saved as train-upsamplers --out writes it (DIR/upsamplers).</summary>
    private string SaveSet(VideoPipeline pipe, string name, long? perturbSeed)
    {
        using var set = FeatureUpsamplerSet.Create(UpsamplerVariant.Lite, pipe.Image.Unet, stageScale: 2);
        if (perturbSeed is long seed) UpsamplerTestSupport.Perturb(set, seed, 0.2);
        var dir = Path.Combine(_dir, name);
        set.Save(Path.Combine(dir, FeatureUpsamplerSet.TrainingOutputSubfolder));
        return dir;
    }

    [Fact]
    public void AZeroSetsRowIsTheTuningFreeRowByteForByteAndANonZeroSetsRowDiffers()
    {
        using var pipe = EmbeddedPipe();
        using var features = new FeatureNetExtractor(FeatureNet.Load(BenchVideoCommand.EmbeddedFeatureNetPath()!), ownsNet: true);
        // Both slots hold lite sets here: the slot names the row, the checkpoint decides what runs.
        var options = new VideoBenchmarkOptions
        {
            RenderDir = BenchVideoCommandTests.WriteRenders(_dir), Clips = 2, Frames = 2, Steps = 4, Scales = [2],
            Methods = [GenerationMethod.SelfCascade], UpsamplersLite = [SaveSet(pipe, "zero", null)],
            UpsamplersFull = [SaveSet(pipe, "perturbed", 5)], KidSubsetSize = 2, KidSubsets = 2,
        };
        var videos = new Dictionary<(string, int), byte[][]>();
        var rows = VideoBenchmark.Run(pipe, features, options,
            onVideo: v => videos[(v.Method, v.Clip)] = v.Frames.Select(f => f.Pixels.ToArray()).ToArray());
        Assert.Equal(["base", "self-cascade", VideoBenchmark.TunedLite, VideoBenchmark.TunedFull], rows.Select(r => r.Method));
        Assert.All(rows.Skip(1), r => Assert.Equal(64, r.Size));
        bool anyDiffers = false;
        for (int clip = 0; clip < 2; clip++)
        {
            var free = videos[("self-cascade", clip)];
            var zero = videos[(VideoBenchmark.TunedLite, clip)];
            var perturbed = videos[(VideoBenchmark.TunedFull, clip)];
            Assert.Equal(2, free.Length);
            for (int f = 0; f < free.Length; f++)
            {
                Assert.Equal(free[f], zero[f]);
                anyDiffers |= !free[f].AsSpan().SequenceEqual(perturbed[f]);
            }
        }
        Assert.True(anyDiffers, "the perturbed set must change the frames (the sets are really applied)");
        Assert.Equal(rows[1].Fd, rows[2].Fd);
        Assert.Equal(rows[1].FrameDifference, rows[2].FrameDifference);
    }

    [Fact]
    public void TunedRowsNeedASetPerUpscalingStageAndDirectStopsAtTheMaxScaleWithNotes()
    {
        using var pipe = EmbeddedPipe();
        var options = new VideoBenchmarkOptions
        {
            RenderDir = _dir, Clips = 2, Frames = 2, Steps = 2, Scales = [2, 4],
            Methods = [GenerationMethod.Direct, GenerationMethod.AttnScale, GenerationMethod.SelfCascade],
            UpsamplersLite = ["a"], UpsamplersFull = ["b", "c"], DirectMaxScale = 2,
        };
        var plan = VideoBenchmark.Plan(pipe, options);
        Assert.Equal(
            ["x2 direct", "x2 attn-scale", "x2 self-cascade", "x2 self-cascade+lite", "x2 self-cascade+full", "x4 self-cascade", "x4 self-cascade+full"],
            plan.Entries.Select(e => $"x{e.Scale} {e.Method}"));
        Assert.Equal(["b", "c"], plan.Entries[^1].UpsamplerDirs!);
        Assert.Equal(2, plan.Notes.Count);
        Assert.StartsWith("x4 (128 px): direct and attn-scale not run", plan.Notes[0]);
        Assert.Contains("limited to x2", plan.Notes[0]);
        Assert.Equal("x4 (128 px): self-cascade+lite left out: the cascade has 2 upscaling stages and 1 upsampler set was given (one per stage).", plan.Notes[1]);

        // Without a limit every method runs at every scale (the old behaviour).
        var all = VideoBenchmark.Plan(pipe, options with { DirectMaxScale = null, UpsamplersLite = [], UpsamplersFull = [] });
        Assert.Equal(6, all.Entries.Count);
        Assert.Empty(all.Notes);
    }

    /// <summary>The CLI end to end at x2 and x4: a zero lite set in train-upsamplers' --out layout, direct only up to x2.</summary>
    [Fact]
    [Trait("Category", "Slow")]
    public void TheCliWritesTunedRowsAndNotesForTheRowsLeftOut()
    {
        using (var pipe = EmbeddedPipe()) SaveSet(pipe, "zero", null);
        var md = Path.Combine(_dir, "video.md");
        var (code, stdout, err) = CliRunner.Run("bench-video", "--renders", BenchVideoCommandTests.WriteRenders(_dir), "--clips", "2",
            "--scales", "2,4", "--frames", "2", "--steps", "2", "--direct-max-scale", "2", "--upsamplers-lite", Path.Combine(_dir, "zero"),
            "--out", md);
        Assert.True(code == 0, err);
        var text = File.ReadAllText(md);
        var rows = text.Split('\n').Where(l => l.StartsWith("| x", StringComparison.Ordinal)).ToList();
        Assert.Equal(["x1 base", "x2 direct", "x2 self-cascade", "x2 self-cascade+lite", "x4 self-cascade"],
            rows.Select(r => string.Join(" ", r.Split('|', StringSplitOptions.TrimEntries)[1], r.Split('|', StringSplitOptions.TrimEntries)[3])));
        Assert.Contains("Upsamplers lite: zero.", text);
        Assert.Contains("Note: x4 (128 px): direct not run (direct sampling limited to x2 and below", text);
        Assert.Contains("Note: x4 (128 px): self-cascade+lite left out: the cascade has 2 upscaling stages and 1 upsampler set was given", text);
        Assert.Contains("Note: x4", stdout);
        // The zero set's row has the tuning-free row's metrics (FD, KID, frame diff, error vs base).
        string Metrics(string row) => string.Join("|", row.Split('|', StringSplitOptions.TrimEntries)[4..9]);
        Assert.Equal(Metrics(rows[2]), Metrics(rows[3]));
    }

    [Fact]
    public void UpsamplersForAnotherUNetOrAMissingFolderAreOneErrorAndNoTable()
    {
        var model = Unet3DFixtures.BuildFolder(Directory.CreateDirectory(Path.Combine(_dir, "t2v")).FullName);
        var renders = BenchVideoCommandTests.WriteRenders(_dir);
        var ups = Path.Combine(Fixtures.RepoRoot, "models", "emoji-base-upsamplers", "lite-64");
        var md = Path.Combine(_dir, "u.md");
        var (code, stdout, err) = CliRunner.Run("bench-video", "--model", model, "--renders", renders, "--clips", "2", "--scales", "2",
            "--frames", "2", "--steps", "2", "--upsamplers-lite", ups, "--out", md);
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        // The UNet3D takes sets (on its spatial half); this one was made for the emoji model's UNet.
        Assert.Contains("does not fit this UNet", lines[0]);
        Assert.False(File.Exists(md));
        Assert.False(File.Exists(md + ".partial"));

        (code, _, err) = CliRunner.Run("bench-video", "--renders", renders, "--upsamplers-full", Path.Combine(_dir, "nope"), "--out", md);
        Assert.Equal(1, code);
        Assert.Contains("--upsamplers-full", err);
        Assert.Contains("folder not found", err);
        Assert.False(File.Exists(md));
    }
}
