namespace SelfCascade.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        // Ctrl+C cancels between denoising steps instead of killing the process mid-write.
        using var cts = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
        return CliApp.Run(args, Console.Out, Console.Error, interactive: !Console.IsErrorRedirected, cts.Token);
    }
}
