using System.Security.Cryptography;
using System.Text.Json;
using SelfCascade.Checkpoints;
using SelfCascade.Checkpoints.Conversion;
using SelfCascade.IO;
using SelfCascade.Tests.Support;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Checkpoints;

/// <summary>
/// tests/reference/single-file: what diffusers' conversion scripts made of the tiny fixture models (every key with
/// dtype, shape and sha256), and the full-size original key layouts. The single files are written here with our
/// converter and must match the manifests byte for byte, tensor by tensor.
/// </summary>
public static class SingleFileReference
{
    public static string Dir => Path.Combine(Fixtures.RepoRoot, "tests", "reference", "single-file");

    public sealed record Entry(string DType, long[] Shape, string Sha256);

    public static Dictionary<string, Entry> Manifest(string name, string precision)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Dir, name + ".keys.json")));
        var result = new Dictionary<string, Entry>(StringComparer.Ordinal);
        foreach (var p in doc.RootElement.GetProperty(precision).EnumerateObject())
            result[p.Name] = new Entry(p.Value.GetProperty("dtype").GetString()!,
                p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray(),
                p.Value.GetProperty("sha256").GetString()!);
        return result;
    }

    public static Dictionary<string, long[]> FullSize(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Dir, $"fullsize_{name}.json")));
        return doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.EnumerateArray().Select(e => e.GetInt64()).ToArray(), StringComparer.Ordinal);
    }

    /// <summary>The tiny diffusers folder a reference single file was made from.</summary>
    public static string BuildFolder(string name, string dir) => name switch
    {
        "sd_tiny" => TinyModelFolders.BuildSd(dir),
        "sd1_tiny" => TinyModelFolders.BuildSd1(dir),
        "sdxl_tiny" => TinyModelFolders.BuildSdxl(dir),
        _ => throw new ArgumentException(name),
    };

    /// <summary>Writes the single file of a tiny folder with our converter (fp32 or fp16, as the scripts' --half).</summary>
    public static string WriteSingleFile(string folder, string path, ScalarType? dtype = null)
    {
        using var components = FolderComponents.Open(folder);
        CheckpointConverter.ToSingleFile(components, path, dtype);
        return path;
    }

    /// <summary>Every difference between a safetensors file and a manifest (keys, dtypes, shapes, bytes).</summary>
    public static List<string> Compare(string file, Dictionary<string, Entry> manifest)
    {
        var problems = new List<string>();
        using var f = SafeTensorsFile.Open(file);
        foreach (var k in manifest.Keys.Except(f.Entries.Keys)) problems.Add("missing " + k);
        foreach (var k in f.Entries.Keys.Except(manifest.Keys)) problems.Add("unexpected " + k);
        foreach (var (k, e) in manifest)
        {
            if (!f.Entries.TryGetValue(k, out var have)) continue;
            if (have.DType != e.DType) { problems.Add($"{k}: dtype {have.DType}, reference {e.DType}"); continue; }
            if (!have.Shape.SequenceEqual(e.Shape)) { problems.Add($"{k}: shape [{string.Join(",", have.Shape)}], reference [{string.Join(",", e.Shape)}]"); continue; }
            using var t = f.Read(k);
            var sha = Convert.ToHexStringLower(SHA256.HashData(t.bytes));
            if (sha != e.Sha256) problems.Add($"{k}: bytes differ");
        }
        return problems;
    }
}
