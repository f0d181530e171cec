using System.CommandLine;
using SelfCascade.Cli;
using SelfCascade.Cli.Commands;
using SelfCascade.Tests.Support;
using TorchSharp;

namespace SelfCascade.Tests.Training;

/// <summary>The training commands, run in-process (they are wired into CliApp on main; here they are hosted in a
/// root command of their own).</summary>
public sealed class TrainCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-traincli-").FullName;

    public TrainCommandTests() => TorchSetup.Ensure();

    public void Dispose()
    {
        torch.set_num_threads(2);
        Directory.Delete(_dir, true);
    }

    private static (int Code, string Out, string Err) Run(Func<CliConsole, Command> create, params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var console = new CliConsole(o, e, interactive: false);
        var root = new RootCommand("test") { CliApp.LibTorchOption, CliApp.ThreadsOption, create(console) };
        var parsed = root.Parse(args);
        Assert.Empty(parsed.Errors);
        int code = parsed.Invoke(new InvocationConfiguration { Output = o, Error = e, EnableDefaultExceptionHandler = false });
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public void TrainBaseWritesAModelFolderAndResumes()
    {
        var data = Path.Combine(_dir, "data");
        SyntheticImages.Make(data, 16);
        var preset = SyntheticImages.MicroPreset(_dir);
        var outDir = Path.Combine(_dir, "run");
        string[] args = ["train-base", "--data", data, "--out", outDir, "--preset", preset, "--size", "16", "--steps", "3",
            "--batch", "4", "--preview-every", "0", "--checkpoint-every", "2", "--threads", "1",
            "--tokenizer", Fixtures.ParityPath("tokenizer", "pad_eos")];
        var (code, stdout, stderr) = Run(TrainBaseCommand.Create, args);
        Assert.True(code == 0, stderr);
        Assert.Contains("2 skipped", stderr);
        Assert.Contains(Path.Combine(outDir, "model"), stdout);
        Assert.True(File.Exists(Path.Combine(outDir, "model", "model_index.json")));
        // Continue to 5 steps with --resume.
        args[Array.IndexOf(args, "--steps") + 1] = "5";
        (code, stdout, stderr) = Run(TrainBaseCommand.Create, [.. args, "--resume"]);
        Assert.True(code == 0, stderr);
        Assert.Contains("trained steps 4..5", stdout);
    }

    [Fact]
    public void TrainBaseLeavesOutTheListedCaptions()
    {
        var data = Path.Combine(_dir, "data");
        int made = SyntheticImages.Make(data, 16, variants: 2, withBadFiles: false);
        var list = Path.Combine(_dir, "quality.prompts.txt");
        File.WriteAllLines(list, ["a red circle", "", "not in the data"]);
        var (code, _, stderr) = Run(TrainBaseCommand.Create, "train-base", "--data", data, "--out", Path.Combine(_dir, "run"),
            "--preset", SyntheticImages.MicroPreset(_dir), "--size", "16", "--steps", "1", "--batch", "2", "--preview-every", "0",
            "--threads", "1", "--tokenizer", Fixtures.ParityPath("tokenizer", "pad_eos"), "--exclude-captions", list);
        Assert.True(code == 0, stderr);
        Assert.Contains($"data: {made - 2} images", stderr); // both variants of the red circle
        Assert.Contains("excluded: 2 file(s) whose caption is one of the 2 listed", stderr);
    }

    [Fact]
    public void TrainUpsamplersOnAPixelSpaceBaseModel()
    {
        var data = Path.Combine(_dir, "data");
        SyntheticImages.Make(data, 32, variants: 1);
        var baseRun = Path.Combine(_dir, "base");
        var (code, _, stderr) = Run(TrainBaseCommand.Create, "train-base", "--data", data, "--out", baseRun,
            "--preset", SyntheticImages.MicroPreset(_dir), "--size", "16", "--steps", "2", "--batch", "2", "--preview-every", "0",
            "--threads", "1", "--tokenizer", Fixtures.ParityPath("tokenizer", "pad_eos"));
        Assert.True(code == 0, stderr);
        var upRun = Path.Combine(_dir, "up");
        string stdout;
        (code, stdout, stderr) = Run(TrainUpsamplersCommand.Create, "train-upsamplers", "--model", Path.Combine(baseRun, "model"),
            "--data", data, "--out", upRun, "--variant", "lite", "--steps", "2", "--batch", "2", "--threads", "1");
        Assert.True(code == 0, stderr);
        Assert.Contains("HR crops 32 px, LR pivots 16 px", stderr); // native 16 x stage scale 2
        Assert.Contains(Path.Combine(upRun, "upsamplers"), stdout);
        Assert.True(File.Exists(Path.Combine(upRun, "upsamplers", "upsamplers.safetensors")));
        Assert.True(File.Exists(Path.Combine(upRun, "loss.csv")));
    }

    [Fact]
    public void TrainBaseReportsAnEmptyDataFolderAsOneErrorLine()
    {
        var empty = Directory.CreateDirectory(Path.Combine(_dir, "empty")).FullName;
        var (code, _, stderr) = Run(TrainBaseCommand.Create, "train-base", "--data", empty, "--out", Path.Combine(_dir, "o"),
            "--tokenizer", Fixtures.ParityPath("tokenizer", "pad_eos"));
        Assert.Equal(1, code);
        Assert.StartsWith("error: ", stderr);
        Assert.Contains("no training images", stderr);
    }
}
