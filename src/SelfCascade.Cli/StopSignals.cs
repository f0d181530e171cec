namespace SelfCascade.Cli;

/// <summary>
/// What Ctrl+C and SIGTERM do: the first cancels <see cref="Token"/> (long work stops at its next check, e.g. a
/// training run writes a checkpoint) and keeps the process alive; a further one lets the signal's default action
/// end the process at once, for work that does not check for cancellation or would take too long to reach the check.
/// </summary>
public sealed class StopSignals(TextWriter stderr) : IDisposable
{
    private readonly CancellationTokenSource _cts = new();

    public CancellationToken Token => _cts.Token;

    /// <summary>Called by a signal handler; true = cancel the signal's default action (the first signal).</summary>
    public bool OnSignal()
    {
        lock (_cts)
        {
            if (_cts.IsCancellationRequested) return false;
            stderr.WriteLine("stopping (signal again to stop at once)");
            _cts.Cancel();
            return true;
        }
    }

    public void Dispose() => _cts.Dispose();
}
