using System.Diagnostics;
using System.Text.Json;
using SelfCascade.Runtime;

namespace SelfCascade.Cli;

/// <summary>
/// Output streams and the error policy shared by all commands: an expected failure (bad input, unreadable model,
/// unavailable device) is one line `error: ...` on stderr and exit code 1; progress bars only on a terminal.
/// </summary>
public sealed class CliConsole(TextWriter stdout, TextWriter stderr, bool interactive)
{
    public TextWriter Out { get; } = stdout;
    public TextWriter Error { get; } = stderr;
    public bool Interactive { get; } = interactive;

    /// <summary>Cancelled by Ctrl+C (set up by Program); long work checks it between steps.</summary>
    public CancellationToken Cancellation { get; init; }

    public static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>`--threads` when given (applied after libtorch is chosen, before the command's work).</summary>
    public int? Threads { get; set; }

    /// <summary>Loads the chosen libtorch and applies `--threads`; before any other torch call.</summary>
    public void InitializeTorch(string? libtorch)
    {
        TorchRuntime.Initialize(libtorch);
        if (Threads is int n) TorchSharp.torch.set_num_threads(CpuEnvironment.ParseThreads(n.ToString(System.Globalization.CultureInfo.InvariantCulture), "--threads"));
    }

    public int Guard(string? libtorch, Func<int> action)
    {
        try
        {
            InitializeTorch(libtorch);
            return action();
        }
        catch (OperationCanceledException)
        {
            Error.WriteLine("error: cancelled");
            return CancelledExitCode;
        }
        catch (OutputsKeptException e) when (e.InnerException is OperationCanceledException)
        {
            Error.WriteLine($"error: cancelled ({e.KeptNote})");
            return CancelledExitCode;
        }
        catch (OutputsKeptException e) when (IsExpected(e.InnerException!))
        {
            Error.WriteLine($"error: {OneLine(e.Message)} ({e.KeptNote})");
            return 1;
        }
        catch (Exception e) when (IsExpected(e))
        {
            Error.WriteLine("error: " + OneLine(e.Message));
            return 1;
        }
    }

    /// <summary>Exit code after Ctrl+C (128 + SIGINT, as shells report a process ended by it).</summary>
    public const int CancelledExitCode = 130;

    private static bool IsExpected(Exception e) => e is IOException or UnauthorizedAccessException or InvalidDataException or ArgumentException
        or InvalidOperationException or KeyNotFoundException or NotSupportedException or FormatException;

    private static string OneLine(string message)
    {
        var lines = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length <= 1 ? message.Trim() : lines[0] + " (" + string.Join("; ", lines.Skip(1)) + ")";
    }

    /// <summary>Seconds between progress lines when stderr is not a terminal (a log file, a pipe, a service).</summary>
    public static readonly TimeSpan LogProgressInterval = TimeSpan.FromSeconds(60);

    /// <summary>A progress bar on stderr when interactive; otherwise a plain line at most once a minute, so a
    /// background run's log shows that it is alive and how far it is, and short runs stay silent.</summary>
    public IProgress<T> Progress<T>(Func<T, (double Fraction, string Label)> describe) =>
        Interactive ? new ProgressBar<T>(Error, describe) : new ProgressLines<T>(Error, describe, LogProgressInterval, ElapsedClock());

    private static Func<TimeSpan> ElapsedClock()
    {
        var sw = Stopwatch.StartNew();
        return () => sw.Elapsed;
    }

    /// <summary>Progress as log lines: one when <paramref name="interval"/> has passed since the start or the last
    /// line, and a last one on completion when any was written (a run short enough to print none stays silent).</summary>
    internal sealed class ProgressLines<T>(TextWriter w, Func<T, (double, string)> describe, TimeSpan interval, Func<TimeSpan> clock) : IProgress<T>
    {
        private TimeSpan _last = TimeSpan.Zero;
        private bool _wrote;

        public void Report(T value)
        {
            var (fraction, label) = describe(value);
            var now = clock();
            bool done = fraction >= 1;
            if (!(now - _last >= interval || (done && _wrote))) return;
            var eta = fraction > 0 && !done ? TimeSpan.FromSeconds(Math.Round(now.TotalSeconds * (1 - fraction) / fraction)) : TimeSpan.Zero;
            w.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{label} ({Math.Clamp(fraction, 0, 1):P0}, {Clock(now)} elapsed{(done ? "" : ", eta " + Clock(eta))})"));
            _last = now;
            _wrote = true;
        }

        private static string Clock(TimeSpan t) => t.TotalHours >= 1 ? $"{(int)t.TotalHours}:{t:mm\\:ss}" : $"{t:mm\\:ss}";
    }

    private sealed class ProgressBar<T>(TextWriter w, Func<T, (double, string)> describe) : IProgress<T>
    {
        private readonly Stopwatch _sw = Stopwatch.StartNew();
        public void Report(T value)
        {
            var (fraction, label) = describe(value);
            int filled = (int)Math.Round(Math.Clamp(fraction, 0, 1) * 30);
            var eta = fraction > 0 ? TimeSpan.FromSeconds(_sw.Elapsed.TotalSeconds * (1 - fraction) / fraction) : TimeSpan.Zero;
            w.Write($"\r[{new string('#', filled)}{new string('.', 30 - filled)}] {label,-40} {_sw.Elapsed:mm\\:ss} eta {eta:mm\\:ss}");
            if (fraction >= 1) w.WriteLine();
        }
    }
}
