using System.Text;
using SelfCascade.Cli;
using SelfCascade.IO;

namespace SelfCascade.Tests.Cli;

/// <summary>Runs the CLI in-process and captures its streams.</summary>
public static class CliRunner
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = CliApp.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    /// <summary>
    /// Runs with progress bars on (interactive) and presses "Ctrl+C" (cancels the token, as Program's CancelKeyPress
    /// handler does) as soon as the progress on stderr first shows <paramref name="trigger"/>. Returns what stderr
    /// showed after the cancel too, to check how soon the run stopped.
    /// </summary>
    public static (int Code, string Out, string Err, string ErrAfterCancel) RunCancelledAt(string trigger, params string[] args)
    {
        using var cts = new CancellationTokenSource();
        var o = new StringWriter();
        var e = new CancelOnText(trigger, cts);
        int code = CliApp.Run(args, o, e, interactive: true, cts.Token);
        return (code, o.ToString(), e.ToString(), e.AfterCancel);
    }

    /// <summary>Runs with a cancellation token the caller controls (e.g. cancelled from a file-write hook).</summary>
    public static (int Code, string Out, string Err) Run(CancellationToken cancellation, params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = CliApp.Run(args, o, e, interactive: false, cancellation);
        return (code, o.ToString(), e.ToString());
    }

    /// <summary>A stderr that cancels once its text contains the trigger, and keeps what came after.</summary>
    private sealed class CancelOnText(string trigger, CancellationTokenSource cts) : StringWriter
    {
        private readonly StringBuilder _after = new();
        public string AfterCancel => _after.ToString();

        public override void Write(char value) => Write(value.ToString());

        public override void Write(string? value)
        {
            if (value is null) return;
            if (cts.IsCancellationRequested) _after.Append(value);
            base.Write(value);
            if (!cts.IsCancellationRequested && ToString().Contains(trigger, StringComparison.Ordinal)) cts.Cancel();
        }

        public override void WriteLine(string? value) { Write(value); Write(Environment.NewLine); }
    }
}

/// <summary>
/// Installs <see cref="AtomicFile.WrapStreamForTests"/> for one test: every file the library writes passes through
/// <paramref name="wrap"/> (path, stream) first. Disposing removes it.
/// </summary>
public sealed class FileWriteHook : IDisposable
{
    public FileWriteHook(Func<string, Stream, Stream> wrap) => AtomicFile.WrapStreamForTests = wrap;
    public void Dispose() => AtomicFile.WrapStreamForTests = null;

    /// <summary>A disk that fills up: writes go through until <paramref name="bytesLeft"/> is used, then fail like ENOSPC.</summary>
    public static Stream FullDisk(Stream inner, long bytesLeft) => new FullDiskStream(inner, bytesLeft);

    private sealed class FullDiskStream(Stream inner, long bytesLeft) : Stream
    {
        private long _left = bytesLeft;
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            int n = (int)Math.Min(buffer.Length, _left);
            inner.Write(buffer[..n]);
            _left -= n;
            if (n < buffer.Length) throw new IOException("No space left on device", 28);
        }
        // The inner file stream belongs to AtomicFile: not disposed here.
    }
}
