using System.Globalization;
using System.Text.Json;
using SelfCascade.IO;
using static TorchSharp.torch;

namespace SelfCascade.Training;

/// <summary>A checkpoint that cannot be used (missing or truncated file, unreadable state), with what is wrong.</summary>
public sealed class CheckpointException(string message) : IOException(message);

/// <summary>What a checkpoint records besides tensors: the step, training seconds so far, the settings that must
/// match to resume exactly (<see cref="Fingerprint"/>) and task values (e.g. the EMA update count).</summary>
public sealed record CheckpointState
{
    public const int CurrentFormat = 1;
    public int Format { get; init; } = CurrentFormat;
    public long Step { get; init; }
    public double Seconds { get; init; }
    public Dictionary<string, string> Fingerprint { get; init; } = [];
    public Dictionary<string, string> Values { get; init; } = [];
    /// <summary>Byte size and SHA-256 of every tensor file, checked on load (a truncated or altered file is found before use).</summary>
    public Dictionary<string, CheckpointFile> Files { get; init; } = [];
}

/// <summary>A checkpoint file's size and SHA-256 (hex).</summary>
public sealed record CheckpointFile(long Bytes, string Sha256);

/// <summary>A checkpoint folder opened for reading: its state and its tensor files by group name.</summary>
public sealed class Checkpoint : IDisposable
{
    private readonly Dictionary<string, SafeTensorsFile> _groups;

    internal Checkpoint(string dir, CheckpointState state, Dictionary<string, SafeTensorsFile> groups)
    {
        Directory = dir; State = state; _groups = groups;
    }

    public string Directory { get; }
    public CheckpointState State { get; }
    public IEnumerable<string> Groups => _groups.Keys;

    /// <summary>A reader for one group: the named tensor (fp32 as stored), or null when absent.</summary>
    public Func<string, Tensor?> Reader(string group)
    {
        if (!_groups.TryGetValue(group, out var file))
            throw new CheckpointException($"{Directory}: checkpoint has no '{group}' tensors");
        return name => file.Entries.ContainsKey(name) ? file.Read(name) : null;
    }

    public bool HasGroup(string group) => _groups.ContainsKey(group);

    public void Dispose()
    {
        foreach (var f in _groups.Values) f.Dispose();
    }
}

/// <summary>
/// Checkpoints in <c>DIR/step-00000100/</c> (one safetensors file per tensor group plus <c>state.json</c>, written
/// last). A checkpoint is assembled in a temporary folder and renamed into place, so a crash mid-write leaves the
/// previous checkpoint as it was and only a <c>.tmp-*</c> folder, which is ignored and cleaned up. Only the newest
/// <see cref="Keep"/> are kept.
/// </summary>
public sealed class CheckpointStore(string directory, int keep = 2)
{
    public const string StateFile = "state.json";
    private const string Prefix = "step-";
    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public string Directory { get; } = Path.GetFullPath(directory);
    public int Keep { get; } = keep >= 1 ? keep : throw new ArgumentOutOfRangeException(nameof(keep), "keep at least one checkpoint");

    public static string FolderName(long step) => Prefix + step.ToString("D8", CultureInfo.InvariantCulture);

    /// <summary>The finished checkpoint folders (temporary ones excluded), oldest first.</summary>
    public IReadOnlyList<(long Step, string Path)> List()
    {
        if (!System.IO.Directory.Exists(Directory)) return [];
        var list = new List<(long, string)>();
        foreach (var d in System.IO.Directory.GetDirectories(Directory))
        {
            var name = Path.GetFileName(d);
            if (name.StartsWith(Prefix, StringComparison.Ordinal)
                && long.TryParse(name[Prefix.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var step))
                list.Add((step, d));
        }
        return list.OrderBy(x => x.Item1).ToList();
    }

    public (long Step, string Path)? Latest()
    {
        var l = List();
        return l.Count == 0 ? null : l[^1];
    }

    /// <summary>Writes a checkpoint atomically and prunes old ones; returns its folder.</summary>
    public string Save(CheckpointState state, IReadOnlyDictionary<string, IEnumerable<KeyValuePair<string, Tensor>>> groups)
    {
        System.IO.Directory.CreateDirectory(Directory);
        var final = Path.Combine(Directory, FolderName(state.Step));
        var tmp = Path.Combine(Directory, $".tmp-{FolderName(state.Step)}-{Environment.ProcessId}");
        if (System.IO.Directory.Exists(tmp)) System.IO.Directory.Delete(tmp, recursive: true);
        System.IO.Directory.CreateDirectory(tmp);
        try
        {
            var sizes = new Dictionary<string, CheckpointFile>();
            foreach (var (group, tensors) in groups)
            {
                var file = group + ".safetensors";
                SafeTensorsWriter.Save(Path.Combine(tmp, file), tensors);
                sizes[file] = new CheckpointFile(new FileInfo(Path.Combine(tmp, file)).Length, Sha256(Path.Combine(tmp, file)));
            }
            var json = JsonSerializer.SerializeToUtf8Bytes(state with { Files = sizes }, JsonOptions);
            using (var fs = new FileStream(Path.Combine(tmp, StateFile), FileMode.CreateNew, FileAccess.Write))
            {
                fs.Write(json);
                fs.Flush(true);
            }
            // Same step already saved (e.g. cancel right after a periodic checkpoint): replace it.
            if (System.IO.Directory.Exists(final)) System.IO.Directory.Delete(final, recursive: true);
            System.IO.Directory.Move(tmp, final);
        }
        catch
        {
            if (System.IO.Directory.Exists(tmp)) System.IO.Directory.Delete(tmp, recursive: true);
            throw;
        }
        Prune();
        return final;
    }

    private void Prune()
    {
        var all = List();
        foreach (var (_, path) in all.Take(Math.Max(0, all.Count - Keep))) System.IO.Directory.Delete(path, recursive: true);
        foreach (var d in System.IO.Directory.GetDirectories(Directory, ".tmp-*"))
        {
            try { System.IO.Directory.Delete(d, recursive: true); }
            catch (IOException) { } // another process's folder in use: leave it
        }
    }

    private static string Sha256(string path)
    {
        using var fs = File.OpenRead(path);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(fs));
    }

    /// <summary>Opens and validates a checkpoint folder; any problem is a <see cref="CheckpointException"/> naming it.</summary>
    public static Checkpoint Open(string dir)
    {
        string Corrupt(string what) => $"{dir}: checkpoint is unusable: {what}. Delete this folder to resume from an earlier checkpoint, or start without --resume.";
        var statePath = Path.Combine(dir, StateFile);
        if (!File.Exists(statePath)) throw new CheckpointException(Corrupt($"{StateFile} is missing (the write did not finish)"));
        CheckpointState? state;
        try { state = JsonSerializer.Deserialize<CheckpointState>(File.ReadAllBytes(statePath), JsonOptions); }
        catch (JsonException e) { throw new CheckpointException(Corrupt($"{StateFile} is not valid ({e.Message})")); }
        if (state is null) throw new CheckpointException(Corrupt($"{StateFile} is empty"));
        if (state.Format != CheckpointState.CurrentFormat)
            throw new CheckpointException(Corrupt($"format {state.Format} is not the supported {CheckpointState.CurrentFormat}"));
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(dir));
        if (name.StartsWith(Prefix, StringComparison.Ordinal) && name != FolderName(state.Step))
            throw new CheckpointException(Corrupt($"{StateFile} says step {state.Step} but the folder is {name}"));
        var groups = new Dictionary<string, SafeTensorsFile>();
        try
        {
            foreach (var (file, record) in state.Files)
            {
                var path = Path.Combine(dir, file);
                if (!File.Exists(path)) throw new CheckpointException(Corrupt($"{file} is missing"));
                long actual = new FileInfo(path).Length;
                if (actual != record.Bytes) throw new CheckpointException(Corrupt($"{file} has {actual} bytes, {record.Bytes} were written"));
                if (!string.Equals(Sha256(path), record.Sha256, StringComparison.OrdinalIgnoreCase))
                    throw new CheckpointException(Corrupt($"{file} does not match its SHA-256 (the file was altered or damaged)"));
                try { groups[Path.GetFileNameWithoutExtension(file)] = SafeTensorsFile.Open(path); }
                catch (IOException e) when (e is not CheckpointException) { throw new CheckpointException(Corrupt(e.Message)); }
            }
        }
        catch
        {
            foreach (var g in groups.Values) g.Dispose();
            throw;
        }
        return new Checkpoint(dir, state, groups);
    }
}
