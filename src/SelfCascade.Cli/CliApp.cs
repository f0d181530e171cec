using System.CommandLine;

namespace SelfCascade.Cli;

/// <summary>Builds the `selfcascade` command tree; in-process entry point for tests.</summary>
public static class CliApp
{
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand("SelfCascade: higher-resolution Stable Diffusion by self-cascading a pretrained model.");
        var config = new InvocationConfiguration { Output = stdout, Error = stderr };
        return root.Parse(args).Invoke(config);
    }
}
