using SelfCascade.Runtime;

namespace SelfCascade.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        // First, before any TorchSharp type loads libtorch: passive OpenMP waiting and a sensible thread count in the
        // native environment libgomp reads at load (CpuEnvironment explains why; the user's own settings win).
        try { CliApp.CpuSettings = CpuEnvironment.PrepareForLibTorch(); }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 2;
        }
        // Ctrl+C cancels between denoising steps instead of killing the process mid-write. SIGTERM does the same:
        // it is what `kill`, systemd and container stops send, and a background job started by a script never sees
        // Ctrl+C's SIGINT (the shell ignores it there), so without this a training run stopped that way lost every
        // step since its last checkpoint. A second signal stops the process at once (the default action), for work
        // that does not check for cancellation or would take too long to reach the next check.
        using var signals = new StopSignals(Console.Error);
        Console.CancelKeyPress += (_, e) => e.Cancel = signals.OnSignal();
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(
            System.Runtime.InteropServices.PosixSignal.SIGTERM, c => c.Cancel = signals.OnSignal());
        return CliApp.Run(args, Console.Out, Console.Error, interactive: !Console.IsErrorRedirected, signals.Token);
    }
}
