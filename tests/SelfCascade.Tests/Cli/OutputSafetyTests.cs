using SelfCascade.Imaging;
using SelfCascade.Tests.Support;
using SelfCascade.Tests.Training;
using SelfCascade.Training;
using TorchSharp;

namespace SelfCascade.Tests.Cli;

/// <summary>
/// What the image commands leave on disk when writing fails part-way (unwritable target, a full disk, a name taken
/// by a folder) or the user presses Ctrl+C (the token Program's CancelKeyPress handler cancels; exit code 130):
/// never a partial or temporary file; with several images, the ones already complete are kept and named.
/// </summary>
public sealed class OutputSafetyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-out-").FullName;
    private readonly string _model;

    public OutputSafetyTests()
    {
        TorchSetup.Ensure();
        _model = TinyModelFolders.BuildSd(Path.Combine(_dir, "model"));
    }

    public void Dispose() => Directory.Delete(_dir, true);

    private string P(string name) => Path.Combine(_dir, name);

    private string[] Generate(string outName, params string[] extra) =>
        ["generate", "--model", _model, "--prompt", "a red circle", "--seed", "5", "--out", P(outName), .. extra,
         .. extra.Contains("--steps") ? Array.Empty<string>() : ["--steps", "6"]];

    /// <summary>No temporary file or folder (`*.tmp*`) anywhere below the test folder.</summary>
    private void AssertNoTemporaryFiles()
    {
        var leftovers = Directory.GetFileSystemEntries(_dir, "*", SearchOption.AllDirectories)
            .Where(p => Path.GetFileName(p).Contains(".tmp", StringComparison.Ordinal)).ToList();
        Assert.True(leftovers.Count == 0, "left behind: " + string.Join(", ", leftovers));
    }

    private List<string> Pngs(string pattern) =>
        Directory.GetFiles(_dir, pattern, SearchOption.AllDirectories).Select(Path.GetFileName).Order().ToList()!;

    // ---- Ctrl+C ----

    [Fact]
    public void CtrlCDuringDenoisingStopsWithinOneStepWith130AndNoFile()
    {
        var (code, _, err, after) = CliRunner.RunCancelledAt("denoise 2/6", Generate("many.png", "--num-images", "2"));
        Assert.Equal(130, code);
        Assert.Contains("error: cancelled", err);
        // The step that was running finishes; no later step starts.
        Assert.DoesNotContain("denoise 3/6", after);
        Assert.Empty(Pngs("many*"));
        AssertNoTemporaryFiles();
    }

    [Fact]
    public void CtrlCInALaterCascadeStageWritesNeitherTheImageNorTheStages()
    {
        var (code, _, err, after) = CliRunner.RunCancelledAt("stage 2/2 denoise 1/",
            Generate("big.png", "--size", "64x64", "--save-stages", P("stages")));
        Assert.Equal(130, code);
        Assert.Contains("error: cancelled", err);
        Assert.DoesNotContain("stage 2/2 denoise 2/", after);
        Assert.Empty(Pngs("*.png"));
        AssertNoTemporaryFiles();
    }

    [Fact]
    public void CtrlCBetweenFilesKeepsTheFinishedImageAndWritesNoOther()
    {
        using var cts = new CancellationTokenSource();
        // Ctrl+C arrives while the first of three files is being written: that file completes, the others never start.
        using var hook = new FileWriteHook((path, s) => { cts.Cancel(); return s; });
        var (code, _, err) = CliRunner.Run(cts.Token, Generate("three.png", "--num-images", "3", "--steps", "2"));
        Assert.Equal(130, code);
        Assert.Contains("cancelled", err);
        Assert.Contains("1 complete file kept: " + P("three-0.png"), err);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Equal(["three-0.png"], Pngs("three*"));
        Assert.Equal(32, RgbImage.Load(P("three-0.png")).Width);
        AssertNoTemporaryFiles();
    }

    [Fact]
    public void CtrlCInUpscaleExits130WithNoFile()
    {
        var input = new RgbImage(32, 32);
        for (int i = 0; i < input.Pixels.Length; i++) input.Pixels[i] = (byte)(i * 7 % 251);
        input.SavePng(P("in.png"));
        var (code, _, err, after) = CliRunner.RunCancelledAt("stage 3/3 denoise 1/",
            "upscale", "--model", _model, "--image", P("in.png"), "--scale", "4", "--steps", "4", "--out", P("up.png"));
        Assert.Equal(130, code);
        Assert.Contains("error: cancelled", err);
        Assert.DoesNotContain("stage 3/3 denoise 2/", after);
        Assert.False(File.Exists(P("up.png")));
        AssertNoTemporaryFiles();
    }

    [Fact]
    public void CtrlCInCompareExits130WithNoGrid()
    {
        // base (native) first, then self-cascade; cancelled in the cascade's second stage.
        var (code, _, err, after) = CliRunner.RunCancelledAt("stage 2/2 denoise 1/",
            "compare", "--model", _model, "--prompt", "a red circle", "--size", "64x64", "--steps", "4",
            "--methods", "base,self-cascade", "--out", P("grid.png"));
        Assert.Equal(130, code);
        Assert.Contains("error: cancelled", err);
        Assert.DoesNotContain("stage 2/2 denoise 2/", after);
        Assert.False(File.Exists(P("grid.png")));
        AssertNoTemporaryFiles();
    }

    // ---- failures while writing ----

    [Fact]
    public void FullDiskOnTheSecondImageKeepsTheFirstCompleteAndLeavesNoPartialFile()
    {
        Assert.Equal(0, CliRunner.Run(Generate("ok.png", "--num-images", "3", "--steps", "2")).Code);
        using (new FileWriteHook((path, s) => path.EndsWith("-1.png", StringComparison.Ordinal) ? FileWriteHook.FullDisk(s, 100) : s))
        {
            var (code, _, err) = CliRunner.Run(Generate("full.png", "--num-images", "3", "--steps", "2"));
            Assert.Equal(1, code);
            Assert.Single(err.Trim().Split('\n'));
            Assert.Contains("No space left on device", err);
            Assert.Contains("1 complete file kept: " + P("full-0.png"), err);
        }
        Assert.Equal(["full-0.png"], Pngs("full*"));
        // The kept image is the complete image: byte for byte what an undisturbed run writes.
        Assert.Equal(File.ReadAllBytes(P("ok-0.png")), File.ReadAllBytes(P("full-0.png")));
        AssertNoTemporaryFiles();
    }

    [Fact]
    public void ANameTakenByAFolderAfterTheFirstImageKeepsTheFirst()
    {
        Directory.CreateDirectory(P("taken-1.png"));
        var (code, _, err) = CliRunner.Run(Generate("taken.png", "--num-images", "2", "--steps", "2"));
        Assert.Equal(1, code);
        Assert.StartsWith("error: ", err);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Contains("1 complete file kept", err);
        Assert.Equal(["taken-0.png"], Pngs("taken*").Where(n => File.Exists(P(n))).ToList());
        Assert.Empty(Directory.GetFileSystemEntries(P("taken-1.png")));
        AssertNoTemporaryFiles();
    }

    [Fact]
    public void AnUnwritableTargetIsOneErrorLineAndNoFile()
    {
        File.WriteAllText(P("plain-file"), "not a folder");
        var (code, _, err) = CliRunner.Run(Generate(Path.Combine("plain-file", "x.png"), "--steps", "2"));
        Assert.Equal(1, code);
        Assert.StartsWith("error: ", err);
        Assert.Single(err.Trim().Split('\n'));
        Assert.DoesNotContain("kept", err);
        Assert.Equal("not a folder", File.ReadAllText(P("plain-file")));
        AssertNoTemporaryFiles();
    }

    [Fact]
    public void FullDiskInUpscaleAndCompareLeavesNoFile()
    {
        var input = new RgbImage(32, 32);
        input.SavePng(P("in.png"));
        using var hook = new FileWriteHook((path, s) => FileWriteHook.FullDisk(s, 64));
        var up = CliRunner.Run("upscale", "--model", _model, "--image", P("in.png"), "--scale", "2", "--steps", "2", "--out", P("up.png"));
        Assert.Equal(1, up.Code);
        Assert.Contains("No space left on device", up.Err);
        Assert.False(File.Exists(P("up.png")));
        var grid = CliRunner.Run("compare", "--model", _model, "--prompt", "a red circle", "--size", "64x64", "--steps", "2",
            "--methods", "base,direct", "--out", P("grid.png"));
        Assert.Equal(1, grid.Code);
        Assert.Contains("No space left on device", grid.Err);
        Assert.False(File.Exists(P("grid.png")));
        AssertNoTemporaryFiles();
    }
}

/// <summary>The training commands: Ctrl+C keeps a complete checkpoint and exports nothing; a failing export leaves no
/// folder and no temporary folder behind.</summary>
public sealed class TrainingOutputSafetyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-trout-").FullName;
    private readonly string _data;

    public TrainingOutputSafetyTests()
    {
        TorchSetup.Ensure();
        torch.set_num_threads(1);
        _data = Path.Combine(_dir, "data");
        SyntheticImages.Make(_data, 32, variants: 1);
    }

    public void Dispose()
    {
        torch.set_num_threads(2);
        Directory.Delete(_dir, true);
    }

    private string[] TrainBase(string outDir, int steps) =>
        ["train-base", "--data", _data, "--out", outDir, "--preset", SyntheticImages.MicroPreset(_dir), "--size", "16",
         "--steps", steps.ToString(System.Globalization.CultureInfo.InvariantCulture), "--batch", "2", "--preview-every", "0",
         "--checkpoint-every", "100", "--threads", "1", "--tokenizer", Fixtures.ParityPath("tokenizer", "pad_eos")];

    private void AssertNoTemporaryFiles()
    {
        var leftovers = Directory.GetFileSystemEntries(_dir, "*", SearchOption.AllDirectories)
            .Where(p => Path.GetFileName(p).Contains(".tmp", StringComparison.Ordinal)).ToList();
        Assert.True(leftovers.Count == 0, "left behind: " + string.Join(", ", leftovers));
    }

    [Fact]
    public void TrainBaseCtrlCKeepsACompleteCheckpointAndExportsNothingAndAFullDiskExportLeavesNoFolder()
    {
        var run = Path.Combine(_dir, "cancelled");
        var (code, _, err, after) = CliRunner.RunCancelledAt("step 2/", TrainBase(run, 50));
        Assert.Equal(130, code);
        Assert.Contains("error: cancelled", err);
        Assert.DoesNotContain("step 3/", after);
        Assert.False(Directory.Exists(Path.Combine(run, BaseModelTraining.ModelFolder)));
        using (var ck = CheckpointStore.Open(Path.Combine(run, Trainer.CheckpointFolder, CheckpointStore.FolderName(2))))
            Assert.Equal(2, ck.State.Step);
        AssertNoTemporaryFiles();

        // The export fails part-way through the UNet weights (full disk): no model folder, no temporary folder; the
        // final checkpoint, written before the export, is complete.
        var full = Path.Combine(_dir, "full");
        using (new FileWriteHook((path, s) => path.EndsWith("diffusion_pytorch_model.safetensors", StringComparison.Ordinal) ? FileWriteHook.FullDisk(s, 1000) : s))
        {
            var r = CliRunner.Run(TrainBase(full, 2));
            Assert.True(r.Code == 1, r.Err);
            Assert.Contains("No space left on device", r.Err);
        }
        Assert.False(Directory.Exists(Path.Combine(full, BaseModelTraining.ModelFolder)));
        using (var ck = CheckpointStore.Open(Path.Combine(full, Trainer.CheckpointFolder, CheckpointStore.FolderName(2))))
            Assert.Equal(2, ck.State.Step);
        AssertNoTemporaryFiles();
    }

    [Fact]
    public void TrainUpsamplersCtrlCAndAFullDiskLeaveNoUpsamplerFolder()
    {
        var baseRun = Path.Combine(_dir, "base");
        var b = CliRunner.Run(TrainBase(baseRun, 1));
        Assert.True(b.Code == 0, b.Err);
        string[] Up(string outDir, int steps) =>
            ["train-upsamplers", "--model", Path.Combine(baseRun, BaseModelTraining.ModelFolder), "--data", _data, "--out", outDir,
             "--variant", "lite", "--steps", steps.ToString(System.Globalization.CultureInfo.InvariantCulture), "--batch", "2",
             "--checkpoint-every", "100", "--threads", "1"];

        var run = Path.Combine(_dir, "up-cancelled");
        var (code, _, err, after) = CliRunner.RunCancelledAt("step 1/", Up(run, 50));
        Assert.Equal(130, code);
        Assert.Contains("error: cancelled", err);
        Assert.DoesNotContain("step 2/", after);
        Assert.False(Directory.Exists(Path.Combine(run, UpsamplerTrainingTask.UpsamplerFolder)));
        using (var ck = CheckpointStore.Open(Path.Combine(run, Trainer.CheckpointFolder, CheckpointStore.FolderName(1))))
            Assert.Equal(1, ck.State.Step);
        AssertNoTemporaryFiles();

        var full = Path.Combine(_dir, "up-full");
        using (new FileWriteHook((path, s) => path.EndsWith("upsamplers.safetensors", StringComparison.Ordinal) ? FileWriteHook.FullDisk(s, 100) : s))
        {
            var r = CliRunner.Run(Up(full, 1));
            Assert.True(r.Code == 1, r.Err);
            Assert.Contains("No space left on device", r.Err);
        }
        Assert.False(Directory.Exists(Path.Combine(full, UpsamplerTrainingTask.UpsamplerFolder)));
        AssertNoTemporaryFiles();
    }
}
