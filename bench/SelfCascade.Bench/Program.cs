using System.Diagnostics;
using System.Globalization;
using SelfCascade.Models.Unet;
using SelfCascade.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Bench;

/// <summary>
/// Benchmarks that print markdown tables. `unet-vae`: milliseconds per UNet step (batch 2 = one CFG step) and per
/// VAE decode (batch 1) at several sizes, with the process's peak working set.
/// Usage: SelfCascade.Bench unet-vae [--model medium|sd21|sdxl] [--sizes 256,512] [--device cpu|cuda]
///        [--dtype fp32|fp16|bf16] [--repeats N] [--threads N] [--libtorch DIR]
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var opts = Args.Parse(args);
        TorchRuntime.Initialize(opts.Get("libtorch"));
        if (opts.Get("threads") is string th) torch.set_num_threads(int.Parse(th, CultureInfo.InvariantCulture));
        var device = TorchRuntime.ResolveDevice(opts.Get("device") ?? "cpu");
        var dtype = TorchRuntime.ParseDType(opts.Get("dtype") ?? "fp32");
        switch (opts.Command)
        {
            case "unet-vae":
                UnetVae(opts, device, dtype);
                return 0;
            case "cascade":
                CascadeBench.Run(opts, device, dtype);
                return 0;
            case "upsamplers":
                UpsamplerBench.Run(opts, device, dtype);
                return 0;
            default:
                Console.Error.WriteLine("usage: SelfCascade.Bench unet-vae [--model medium|sd21|sdxl] [--sizes 256,512] [--device cpu|cuda] [--dtype fp32|fp16|bf16] [--repeats N]");
                Console.Error.WriteLine("       SelfCascade.Bench cascade [--model medium|sd21] [--size 1024x1024] [--steps 20] [--repeats 5] [--device cpu|cuda] [--dtype ...]");
                Console.Error.WriteLine("       SelfCascade.Bench upsamplers [--size 512x512] [--steps 10] [--device cpu|cuda]");
                return 2;
        }
    }

    private static void UnetVae(Args opts, Device device, ScalarType dtype)
    {
        var model = opts.Get("model") ?? "medium";
        var (unetJson, vaeJson, context, pooled) = model switch
        {
            "medium" => (BenchModels.MediumSd21Unet, BenchModels.MediumVae, 256, 0),
            "sd21" => (BenchModels.ArchConfig("unet_sd21_base.json")!, BenchModels.ArchConfig("vae_sd.json")!, 1024, 0),
            "sdxl" => (BenchModels.ArchConfig("unet_sdxl.json")!, BenchModels.ArchConfig("vae_sd.json")!, 2048, 1280),
            _ => throw new ArgumentException($"unknown model '{model}'"),
        };
        var sizes = (opts.Get("sizes") ?? "256,512").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        int repeats = int.Parse(opts.Get("repeats") ?? "3", CultureInfo.InvariantCulture);
        bool skipVae = opts.Has("no-vae");
        using var unet = BenchModels.Unet(unetJson, device, dtype);
        using var vae = skipVae ? null : BenchModels.Vae(vaeJson, device, dtype);
        Console.WriteLine($"# UNet step and VAE decode, {model} shapes, random weights, {device.type} {TorchRuntime.DTypeName(dtype)}, {torch.get_num_threads()} threads");
        Console.WriteLine();
        Console.WriteLine("| size (px) | UNet step, batch 2 (ms) | VAE decode, batch 1 (ms) | peak working set (MiB) |");
        Console.WriteLine("|---|---|---|---|");
        using var _ = torch.inference_mode();
        foreach (var size in sizes)
        {
            int lat = size / 8;
            using var sample = randn([2, 4, lat, lat], dtype: dtype, device: device);
            using var t = tensor(new long[] { 500 }, device: device);
            using var ctx = randn([2, 77, context], dtype: dtype, device: device);
            using var textEmbeds = pooled > 0 ? randn([2, pooled], dtype: dtype, device: device) : null;
            using var timeIds = pooled > 0 ? tensor(new float[] { size, size, 0, 0, size, size }, [1, 6]).repeat(2, 1).to(dtype).to(device) : null;
            var added = pooled > 0 ? new UNetAddedConditions(textEmbeds!, timeIds!) : null;
            double unetMs = Time(repeats, device, () => { using var o = unet.Forward(sample, t, ctx, added); });
            double vaeMs = double.NaN;
            if (vae != null)
            {
                using var z = randn([1, 4, lat, lat], dtype: dtype, device: device);
                vaeMs = Time(Math.Max(1, repeats - 1), device, () => { using var o = vae.Decode(z); });
            }
            double peak = Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {size}x{size} | {unetMs:F1} | {(double.IsNaN(vaeMs) ? "-" : vaeMs.ToString("F1", CultureInfo.InvariantCulture))} | {peak:F0} |"));
        }
        Console.WriteLine();
        Console.WriteLine("Median of the timed runs after one warm-up. The peak working set is the process's high-water mark so far (it includes the networks' weights).");
    }

    /// <summary>Median wall time of <paramref name="repeats"/> runs after one warm-up, synchronising CUDA.</summary>
    public static double Time(int repeats, Device device, Action run)
    {
        run();
        Sync(device);
        var times = new List<double>();
        for (int i = 0; i < repeats; i++)
        {
            var sw = Stopwatch.StartNew();
            run();
            Sync(device);
            times.Add(sw.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        return times[times.Count / 2];
    }

    private static void Sync(Device device)
    {
        if (device.type == DeviceType.CUDA) torch.cuda.synchronize();
    }
}

/// <summary>Minimal `command --key value --flag` parsing for the bench tool.</summary>
public sealed class Args
{
    public string Command { get; private init; } = "";
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);

    public static Args Parse(string[] args)
    {
        var a = new Args { Command = args.Length > 0 ? args[0] : "" };
        for (int i = 1; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal)) throw new ArgumentException($"unexpected '{args[i]}'");
            var key = args[i][2..];
            string? value = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : null;
            a._values[key] = value;
        }
        return a;
    }

    public string? Get(string key) => _values.GetValueOrDefault(key);
    public bool Has(string key) => _values.ContainsKey(key);
}
