using System.Text.Json;
using SelfCascade.Cli.Commands;
using SelfCascade.Tests.Cli;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Benchmarks;

/// <summary>`bench-gpu` on the CPU: the smoke run prints every row of the GPU table beside diffusers' numbers.</summary>
public sealed class BenchGpuSmokeTests
{
    public BenchGpuSmokeTests() => TorchSetup.Ensure();

    [Fact]
    public void SmokeRunHasEveryRowAndRatiosFromTheReferenceJson()
    {
        var refDir = BenchGpuCommand.DefaultReferenceDir();
        Assert.NotNull(refDir);
        var (code, text, err) = CliRunner.Run("bench-gpu", "--device", "cpu", "--repeats", "1", "--json", "--reference", refDir!);
        Assert.True(code == 0, err);
        Assert.Contains("SMOKE RUN", text);
        var json = text[text.IndexOf("\n[", StringComparison.Ordinal)..];
        using var doc = JsonDocument.Parse(json);
        var rows = doc.RootElement.EnumerateArray().ToList();
        var keys = rows.Select(r => (r.GetProperty("model").GetString()!, r.GetProperty("px").GetInt32(), r.GetProperty("kind").GetString()!.Split(' ')[0])).ToList();
        (string, int, string)[] expected =
        [
            ("sd21-base", 2048, "cascade"), ("sd21-base", 512, "unet"), ("sd21-base", 1024, "unet"), ("sd21-base", 2048, "unet"), ("sd21-base", 4096, "unet"),
            ("sd-vae", 512, "vae"), ("sd-vae", 1024, "vae"), ("sd-vae", 2048, "vae"), ("sd-vae", 4096, "vae"),
            ("sdxl", 4096, "cascade"), ("sdxl", 1024, "unet"), ("sdxl", 2048, "unet"), ("sdxl", 4096, "unet"),
        ];
        Assert.Equal(expected, keys.ToArray());

        // diffusers' numbers, read here independently of the command.
        var anchor = JsonDocument.Parse(File.ReadAllText(Path.Combine(refDir!, "h200-unet-vae-anchor.json"))).RootElement.EnumerateArray().ToList();
        var peer = JsonDocument.Parse(File.ReadAllText(Path.Combine(refDir!, "h200-cascade-peer.json"))).RootElement.EnumerateArray().ToList();
        foreach (var r in rows)
        {
            string model = r.GetProperty("model").GetString()!, kind = r.GetProperty("kind").GetString()!;
            int px = r.GetProperty("px").GetInt32();
            double expectedMs = kind.StartsWith("cascade")
                ? peer.Single(e => e.GetProperty("what").GetString()!.StartsWith("self-cascade") && e.GetProperty("model").GetString() == model).GetProperty("total_s").GetDouble() * 1000
                : anchor.Single(e => e.GetProperty("px").GetInt32() == px
                    && e.GetProperty("what").GetString() == (kind.StartsWith("unet") ? "unet_fwd_cfg_batch2" : "vae_decode_batch1")
                    && (!kind.StartsWith("unet") || e.GetProperty("model").GetString() == model)).GetProperty("ms_median").GetDouble();
            double ours = r.GetProperty("ours_ms").GetDouble(), reference = r.GetProperty("reference_ms").GetDouble();
            Assert.Equal(expectedMs, reference, 6);
            Assert.True(ours > 0);
            Assert.Equal(ours / reference, r.GetProperty("ratio").GetDouble(), 9);
        }
        // The 4096 VAE row is tiled (untiled needs ~38 GiB in fp32 accounting > 20 GiB); 512 is not.
        Assert.Contains("tiled (untiled needs > 20 GiB)", rows[8].GetProperty("note").GetString());
        Assert.StartsWith("untiled", rows[5].GetProperty("note").GetString());
        // The markdown table carries the same ratios.
        Assert.Contains("| unet step (cfg batch 2) | sdxl | 4096 |", text);
    }
}
