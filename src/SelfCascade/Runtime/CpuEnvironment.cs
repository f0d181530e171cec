using System.Globalization;
using System.Runtime.InteropServices;

namespace SelfCascade.Runtime;

/// <summary>What <see cref="CpuEnvironment.PrepareForLibTorch"/> left in the native environment, and why.</summary>
public sealed record CpuEnvironmentSettings(string WaitPolicy, bool WaitPolicyFromUser, int Threads, string ThreadsSource);

/// <summary>
/// libtorch's OpenMP runtime (libgomp) reads OMP_WAIT_POLICY and OMP_NUM_THREADS once, from the native environment,
/// when it is loaded. Its default is to spin while idle, which makes a run 10-100x slower when another process
/// shares the cores (docs/BENCHMARKS.md, "Busy machine"). This sets passive waiting and a thread count from the
/// cores this process may use, unless the user set them, before anything loads libtorch. .NET's
/// Environment.SetEnvironmentVariable does not change the native environment on Unix, so this calls libc's setenv
/// (and mirrors the values into .NET's copy so both agree). Nothing here touches a TorchSharp type.
/// </summary>
public static partial class CpuEnvironment
{
    /// <summary>Threads for torch's intra-op work; wins over OMP_NUM_THREADS.</summary>
    public const string ThreadsVariable = "SELFCASCADE_THREADS";
    public const string WaitPolicyVariable = "OMP_WAIT_POLICY";
    public const string OmpThreadsVariable = "OMP_NUM_THREADS";
    /// <summary>More threads than this is a typo, not a machine.</summary>
    public const int MaxThreads = 4096;

    /// <summary>
    /// Call first thing in a program's Main, before any torch call (later it has no effect on a loaded libgomp).
    /// OMP_WAIT_POLICY: kept when set, else PASSIVE. Threads: SELFCASCADE_THREADS when set, else OMP_NUM_THREADS when
    /// set, else <see cref="Environment.ProcessorCount"/> (which, unlike libgomp's default, honours the process's
    /// CPU affinity and a container's CPU quota). An unusable SELFCASCADE_THREADS is an <see cref="ArgumentException"/>.
    /// </summary>
    public static CpuEnvironmentSettings PrepareForLibTorch(Func<string, string?>? read = null, int? processorCount = null)
    {
        read ??= Environment.GetEnvironmentVariable;
        var wait = read(WaitPolicyVariable);
        bool waitFromUser = !string.IsNullOrWhiteSpace(wait);
        if (!waitFromUser)
        {
            wait = "PASSIVE";
            Set(WaitPolicyVariable, wait);
        }

        int threads;
        string source;
        var own = read(ThreadsVariable);
        var omp = read(OmpThreadsVariable);
        if (!string.IsNullOrWhiteSpace(own))
        {
            threads = ParseThreads(own, ThreadsVariable);
            source = ThreadsVariable;
            Set(OmpThreadsVariable, threads.ToString(CultureInfo.InvariantCulture));
        }
        else if (!string.IsNullOrWhiteSpace(omp) && int.TryParse(omp.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var ompThreads) && ompThreads >= 1)
        {
            threads = ompThreads;
            source = OmpThreadsVariable;
        }
        else
        {
            // OMP_NUM_THREADS unset (or a list/garbage libgomp would interpret itself): the usable cores.
            threads = Math.Clamp(processorCount ?? Environment.ProcessorCount, 1, MaxThreads);
            source = "available cores";
            if (string.IsNullOrWhiteSpace(omp)) Set(OmpThreadsVariable, threads.ToString(CultureInfo.InvariantCulture));
            else source = OmpThreadsVariable + " (as libgomp reads it)";
        }
        return new CpuEnvironmentSettings(wait!.Trim(), waitFromUser, threads, source);
    }

    /// <summary>A thread count from the user (environment or --threads): a whole number in [1, <see cref="MaxThreads"/>].</summary>
    public static int ParseThreads(string text, string what)
    {
        if (!int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1 || n > MaxThreads)
            throw new ArgumentException($"{what}='{text}' must be a whole number from 1 to {MaxThreads}");
        return n;
    }

    /// <summary>The native environment's value (what libgomp will see), or null. Linux/macOS only.</summary>
    public static string? NativeGet(string name)
    {
        if (OperatingSystem.IsWindows()) return Environment.GetEnvironmentVariable(name);
        var p = getenv(name);
        return p == IntPtr.Zero ? null : Marshal.PtrToStringUTF8(p);
    }

    private static void Set(string name, string value)
    {
        // Windows: the CRT and libtorch's OpenMP read the process environment block, which .NET does set.
        if (!OperatingSystem.IsWindows() && setenv(name, value, 1) != 0)
            throw new InvalidOperationException($"setenv({name}) failed (errno {Marshal.GetLastPInvokeError()})");
        Environment.SetEnvironmentVariable(name, value);
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int setenv(string name, string value, int overwrite);

    [LibraryImport("libc", EntryPoint = "getenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr getenv(string name);
}
