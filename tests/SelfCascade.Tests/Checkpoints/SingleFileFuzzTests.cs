using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using SelfCascade.Checkpoints;
using SelfCascade.Checkpoints.SingleFile;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Cli;
using SelfCascade.Tests.Support;
using Xunit.Abstractions;

namespace SelfCascade.Tests.Checkpoints;

/// <summary>
/// Mutated single files (truncated, lying headers, wrong shapes, missing and duplicate keys, unknown layouts) are
/// refused with one clear error, never a crash: through the library (the exception types the CLI reports) and
/// through `inspect` and `generate` (one line on stderr, exit code 1).
/// </summary>
public sealed class SingleFileFuzzTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-fuzz-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static readonly Type[] Clear = [typeof(IOException), typeof(InvalidDataException), typeof(ArgumentException),
        typeof(InvalidOperationException), typeof(KeyNotFoundException), typeof(NotSupportedException), typeof(FormatException)];

    private static (byte[] Header, byte[] Data) Split(byte[] file)
    {
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(file);
        return (file[8..(int)(8 + n)], file[(int)(8 + n)..]);
    }

    private static byte[] Join(byte[] header, byte[] data)
    {
        var result = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)header.Length);
        header.CopyTo(result, 8);
        data.CopyTo(result, 8 + header.Length);
        return result;
    }

    private static byte[] EditHeader(byte[] file, Action<JsonObject> edit)
    {
        var (h, d) = Split(file);
        var node = JsonNode.Parse(h)!.AsObject();
        edit(node);
        return Join(Encoding.UTF8.GetBytes(node.ToJsonString()), d);
    }

    private static string FirstKey(JsonObject h, string contains) => h.Select(kv => kv.Key).First(k => k.Contains(contains, StringComparison.Ordinal));

    [Fact]
    public void MutatedFilesGiveOneLineErrors()
    {
        TorchSetup.Ensure();
        var folder = TinyModelFolders.BuildSd(Path.Combine(_dir, "sd"));
        var good = SingleFileReference.WriteSingleFile(folder, Path.Combine(_dir, "good.safetensors"));
        var bytes = File.ReadAllBytes(good);
        var (header, _) = Split(bytes);
        var mutants = new List<(string Name, byte[] Bytes)>
        {
            ("empty file", []),
            ("4 bytes", bytes[..4]),
            ("truncated in the header", bytes[..(8 + header.Length / 2)]),
            ("truncated in the data", bytes[..(bytes.Length / 2)]),
            ("one byte short", bytes[..^1]),
            ("header length too large", Mutate(bytes, b => BinaryPrimitives.WriteUInt64LittleEndian(b, ulong.MaxValue / 2))),
            ("header length too small", Mutate(bytes, b => BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)header.Length - 7))),
            ("header not JSON", Mutate(bytes, b => b[8] = (byte)'#')),
            ("empty header", Join("{}"u8.ToArray(), [])),
            ("header is an array", Join("[1,2,3]   "u8.ToArray(), [])),
            ("offsets beyond the data", EditHeader(bytes, h => h[FirstKey(h, "out.2.weight")]!["data_offsets"] = new JsonArray(0L, (long)bytes.Length * 2))),
            ("end before begin", EditHeader(bytes, h => h[FirstKey(h, "out.2.bias")]!["data_offsets"] = new JsonArray(100L, 50L))),
            ("overlapping tensors", EditHeader(bytes, h =>
            {
                var a = FirstKey(h, "time_embed.0.bias"); var b = FirstKey(h, "time_embed.2.bias");
                h[b]!["data_offsets"] = h[a]!["data_offsets"]!.DeepClone();
            })),
            ("shape does not match the span", EditHeader(bytes, h => h[FirstKey(h, "time_embed.0.weight")]!["shape"] = new JsonArray(1L))),
            ("negative dimension", EditHeader(bytes, h => h[FirstKey(h, "time_embed.0.weight")]!["shape"] = new JsonArray(-128L, -32L))),
            ("unknown dtype", EditHeader(bytes, h => h[FirstKey(h, "time_embed.0.weight")]!["dtype"] = "F8_E9")),
            ("wrong shape, same bytes", EditHeader(bytes, h => { var k = FirstKey(h, "time_embed.0.weight"); var s = h[k]!["shape"]!.AsArray(); h[k]!["shape"] = new JsonArray(s[1]!.GetValue<long>(), s[0]!.GetValue<long>()); })),
            ("fused q/k/v not divisible by 3", EditHeader(bytes, h => { var k = FirstKey(h, "in_proj_weight"); var s = h[k]!["shape"]!.AsArray(); h[k]!["shape"] = new JsonArray(s[1]!.GetValue<long>(), s[0]!.GetValue<long>()); })),
            ("missing UNet key", EditHeader(bytes, h => h.Remove(FirstKey(h, "model.diffusion_model.out.2.weight")))),
            ("missing fused key", EditHeader(bytes, h => h.Remove(FirstKey(h, "in_proj_bias")))),
            ("missing VAE attention key", EditHeader(bytes, h => h.Remove(FirstKey(h, "mid.attn_1.q.weight")))),
            ("unexpected key under the UNet", EditHeader(bytes, h => { var k = FirstKey(h, "out.2.bias"); var v = h[k]!.DeepClone(); h.Remove(k); h["model.diffusion_model.out.9.bias"] = v; })),
            ("duplicate key", DuplicateKey(bytes)),
            ("no UNet (renamed prefix)", EditHeader(bytes, h =>
            {
                foreach (var k in h.Select(kv => kv.Key).Where(k => k.StartsWith("model.diffusion_model.", StringComparison.Ordinal)).ToList())
                { var v = h[k]!.DeepClone(); h.Remove(k); h["net." + k[22..]] = v; }
            })),
            ("metadata not an object", EditHeader(bytes, h => h["__metadata__"] = 5)),
            ("an SDXL refiner", EditHeader(bytes, h => { h["conditioner.embedders.0.model.positional_embedding"] = h[FirstKey(h, "positional_embedding")]!.DeepClone(); })),
            ("an inpainting UNet", EditHeader(bytes, h => { var k = FirstKey(h, "input_blocks.0.0.weight"); h[k]!["shape"] = new JsonArray(32L, 9L, 1L, 1L); h[k]!["data_offsets"] = new JsonArray(0L, 32L * 9 * 4); h.Remove(FirstKey(h, "time_embed.0.weight")); })),
            ("a .ckpt", bytes[..64]),
        };
        int refused = 0;
        var failures = new List<string>();
        foreach (var (name, data) in mutants)
        {
            var path = Path.Combine(_dir, "m" + (name == "a .ckpt" ? ".ckpt" : ".safetensors"));
            File.WriteAllBytes(path, data);
            try
            {
                using var pipe = StableDiffusionPipeline.FromPretrained(path, new PipelineOptions { ConfigDir = folder });
                failures.Add($"{name}: loaded");
            }
            catch (Exception e) when (Clear.Any(t => t.IsInstanceOfType(e)))
            {
                if (!e.Message.Contains(Path.GetFileName(path), StringComparison.Ordinal) && !e.Message.Contains("pickle", StringComparison.Ordinal))
                    failures.Add($"{name}: the error does not name the file: {e.Message}");
                refused++;
            }
            catch (Exception e)
            {
                failures.Add($"{name}: {e.GetType().Name}: {e.Message}");
            }
            var (code, _, err) = CliRunner.Run("inspect", "--model", path, "--config", folder);
            var errLines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            if (code == 0 || errLines.Length != 1 || !errLines[0].StartsWith("error: ", StringComparison.Ordinal))
                failures.Add($"{name}: inspect exit {code}, stderr '{err.Trim()}'");
        }
        output.WriteLine($"{refused} of {mutants.Count} mutated single files refused with a clear error, {failures.Count} failures");
        Console.WriteLine($"single-file fuzz: {refused} of {mutants.Count} mutated files refused with one clear error");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.Equal(mutants.Count, refused);
    }

    private static byte[] Mutate(byte[] bytes, Action<byte[]> edit)
    {
        var copy = (byte[])bytes.Clone();
        edit(copy);
        return copy;
    }

    /// <summary>The same name twice in the header JSON (valid JSON; a naive reader keeps the last one).</summary>
    private static byte[] DuplicateKey(byte[] bytes)
    {
        var (h, d) = Split(bytes);
        var text = Encoding.UTF8.GetString(h).TrimEnd();
        var node = JsonNode.Parse(text)!.AsObject();
        var k = FirstKey(node, "out.2.bias");
        var dup = $"\"{k}\":{node[k]!.ToJsonString()}";
        return Join(Encoding.UTF8.GetBytes("{" + dup + "," + text[1..]), d);
    }
}
