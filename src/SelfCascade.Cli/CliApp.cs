using System.CommandLine;
using SelfCascade.Cli.Commands;
using SelfCascade.Runtime;

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

    /// <summary>`--threads N`: torch's intra-op threads (default $SELFCASCADE_THREADS, else the usable cores).</summary>
    public static readonly Option<int?> ThreadsOption = new("--threads")
    {
        Description = $"CPU threads for torch (default ${CpuEnvironment.ThreadsVariable}, else $OMP_NUM_THREADS, else the cores this process may use)",
        Recursive = true,
    };

    /// <summary>What Program.Main set up before libtorch loaded (null when the CLI runs in-process, as in tests).</summary>
    public static CpuEnvironmentSettings? CpuSettings { get; set; }

    /// <summary>The whole command tree (the tests walk it to check every command's help).</summary>
    internal static RootCommand BuildRoot(CliConsole console)
    {
        var root = new RootCommand("SelfCascade: higher-resolution images from pretrained Stable Diffusion models by self-cascading them.")
        {
            LibTorchOption,
            ThreadsOption,
        };
        root.Add(InspectCommand.Create(console));
        root.Add(GenerateCommand.Create(console));
        root.Add(GenerateVideoCommand.Create(console));
        root.Add(PlanCommand.Create(console));
        root.Add(UpscaleCommand.Create(console));
        root.Add(CompareCommand.Create(console));
        root.Add(PromptGridCommand.Create(console));
        root.Add(BenchQualityCommand.Create(console));
        root.Add(BenchVideoCommand.Create(console));
        root.Add(TrainFeatureNetCommand.Create(console));
        root.Add(DataCommand.Create(console));
        root.Add(MotionDataCommand.Create(console));
        root.Add(ConvertCommand.Create(console));
        root.Add(ConvertUpsamplersCommand.Create(console));
        root.Add(TrainBaseCommand.Create(console));
        root.Add(TrainUpsamplersCommand.Create(console));
        root.Add(TrainMotionCommand.Create(console));
        root.Add(DoctorCommand.Create(console));
        root.Add(BenchGpuCommand.Create(console));
        root.Add(ServeCommand.Create(console));
        return root;
    }

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, bool interactive = false,
        CancellationToken cancellation = default)
    {
        var console = new CliConsole(stdout, stderr, interactive) { Cancellation = cancellation };
        var root = BuildRoot(console);
        // Help and --version go through this buffer: shown with the command name users type, plus the examples.
        var helpText = new StringWriter();
        var config = new InvocationConfiguration { Output = helpText, Error = stderr, EnableDefaultExceptionHandler = false };
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors) stderr.WriteLine("error: " + e.Message);
            stderr.WriteLine("Run 'selfcascade --help' for usage.");
            return 2;
        }
        console.Threads = parsed.GetValue(ThreadsOption);
        int code = parsed.Invoke(config);
        if (helpText.GetStringBuilder().Length > 0)
        {
            stdout.Write(CliExamples.WithCommandName(helpText.ToString()));
            if (parsed.Action is System.CommandLine.Help.HelpAction) stdout.Write(CliExamples.Section(parsed.CommandResult.Command));
        }
        return code;
    }
}
