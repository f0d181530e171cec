using System.CommandLine;
using SelfCascade.Cli.Commands;

namespace SelfCascade.Cli;

/// <summary>Builds the `selfcascade` command tree; the in-process entry point the tests call.</summary>
public static class CliApp
{
    /// <summary>`--libtorch DIR`: a CUDA libtorch folder (else SELFCASCADE_LIBTORCH, else the bundled CPU one).</summary>
    public static readonly Option<string?> LibTorchOption = new("--libtorch")
    {
        Description = "Folder of a CUDA libtorch (e.g. a PyTorch install's torch/lib); default $SELFCASCADE_LIBTORCH or the bundled CPU libtorch",
        Recursive = true,
    };

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, bool interactive = false,
        CancellationToken cancellation = default)
    {
        var console = new CliConsole(stdout, stderr, interactive) { Cancellation = cancellation };
        var root = new RootCommand("SelfCascade: higher-resolution images from pretrained Stable Diffusion models by self-cascading them.")
        {
            LibTorchOption,
        };
        root.Add(InspectCommand.Create(console));
        root.Add(GenerateCommand.Create(console));
        root.Add(GenerateVideoCommand.Create(console));
        root.Add(PlanCommand.Create(console));
        root.Add(UpscaleCommand.Create(console));
        root.Add(CompareCommand.Create(console));
        root.Add(BenchQualityCommand.Create(console));
        root.Add(DataCommand.Create(console));
        root.Add(MotionDataCommand.Create(console));
        root.Add(ConvertCommand.Create(console));
        root.Add(ConvertUpsamplersCommand.Create(console));
        root.Add(TrainBaseCommand.Create(console));
        root.Add(TrainUpsamplersCommand.Create(console));
        root.Add(TrainMotionCommand.Create(console));
        root.Add(DoctorCommand.Create(console));
        root.Add(BenchGpuCommand.Create(console));
        var config = new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false };
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors) stderr.WriteLine("error: " + e.Message);
            stderr.WriteLine("Run 'selfcascade --help' for usage.");
            return 2;
        }
        return parsed.Invoke(config);
    }
}
