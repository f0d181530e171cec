using System.Globalization;

namespace SelfCascade.Training;

/// <summary>One optimizer step: mean loss over its micro-batches, the learning rate, and training seconds so far.</summary>
public sealed record LossRecord(long Step, double Loss, double LearningRate, double Seconds);

/// <summary>
/// The loss log, a CSV file <c>step,loss,lr,seconds</c> (invariant culture, one line per optimizer step, flushed as
/// it is written). On resume it is cut back to the checkpoint's step, so lines a crashed run wrote after its last
/// checkpoint do not appear twice.
/// </summary>
public sealed class LossLog : IDisposable
{
    public const string Header = "step,loss,lr,seconds";
    private readonly StreamWriter _writer;
    private readonly List<LossRecord> _records;

    public string Path { get; }
    public IReadOnlyList<LossRecord> Records => _records;

    /// <summary>Opens (creating) the log, keeping only the records up to <paramref name="keepThroughStep"/>.</summary>
    public LossLog(string path, long keepThroughStep)
    {
        Path = System.IO.Path.GetFullPath(path);
        _records = File.Exists(Path) ? Read(Path).Where(r => r.Step <= keepThroughStep).ToList() : [];
        var dir = System.IO.Path.GetDirectoryName(Path);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        // Rewrite the kept part (atomically), then append to it.
        var tmp = Path + ".tmp";
        File.WriteAllLines(tmp, [Header, .. _records.Select(Format)]);
        File.Move(tmp, Path, overwrite: true);
        _writer = new StreamWriter(new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read));
    }

    public void Append(LossRecord record)
    {
        _records.Add(record);
        _writer.WriteLine(Format(record));
        _writer.Flush();
    }

    public static string Format(LossRecord r) => string.Join(",",
        r.Step.ToString(CultureInfo.InvariantCulture), r.Loss.ToString("R", CultureInfo.InvariantCulture),
        r.LearningRate.ToString("R", CultureInfo.InvariantCulture), r.Seconds.ToString("F3", CultureInfo.InvariantCulture));

    /// <summary>Reads a loss CSV; malformed lines (a line cut by a crash) are skipped.</summary>
    public static List<LossRecord> Read(string path)
    {
        var list = new List<LossRecord>();
        foreach (var line in File.ReadLines(path).Skip(1))
        {
            var f = line.Split(',');
            if (f.Length != 4) continue;
            if (long.TryParse(f[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var step)
                && double.TryParse(f[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var loss)
                && double.TryParse(f[2], NumberStyles.Float, CultureInfo.InvariantCulture, out var lr)
                && double.TryParse(f[3], NumberStyles.Float, CultureInfo.InvariantCulture, out var s))
                list.Add(new LossRecord(step, loss, lr, s));
        }
        return list;
    }

    public void Dispose() => _writer.Dispose();
}
