using System.Runtime.InteropServices;

namespace SelfCascade.Runtime.Doctor;

/// <summary>
/// Loads shared libraries for the runtime probes. Injectable so tests can stand in for hardware this machine lacks
/// (a loader that "finds" a driver, a device query that reports zero devices).
/// </summary>
public interface INativeLibraryLoader
{
    /// <summary>dlopen of a path or soname: true and the handle, or false and the loader's own message.</summary>
    bool TryLoad(string pathOrName, out IntPtr handle, out string? error);

    /// <summary>An exported symbol's address, or false.</summary>
    bool TryGetExport(IntPtr handle, string name, out IntPtr address);
}

/// <summary>The process's real loader (<see cref="NativeLibrary"/>): its DllNotFoundException text carries dlerror().</summary>
public sealed class SystemNativeLibraryLoader : INativeLibraryLoader
{
    public static readonly SystemNativeLibraryLoader Instance = new();

    public bool TryLoad(string pathOrName, out IntPtr handle, out string? error)
    {
        try
        {
            handle = NativeLibrary.Load(pathOrName);
            error = null;
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
        {
            handle = IntPtr.Zero;
            error = OneLine(e.Message);
            return false;
        }
    }

    public bool TryGetExport(IntPtr handle, string name, out IntPtr address) => NativeLibrary.TryGetExport(handle, name, out address);

    /// <summary>The dlerror() text .NET appends after its generic advice (kept whole when the format differs).</summary>
    private static string OneLine(string message)
    {
        const string marker = "environment variable: ";
        int at = message.IndexOf(marker, StringComparison.Ordinal);
        if (at >= 0) message = message[(at + marker.Length)..];
        return string.Join(" ", message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }
}
