using System.Diagnostics;
using System.Globalization;
using SelfCascade.Cascade;
using SelfCascade.Evaluation;
using SelfCascade.IO;
using SelfCascade.Models;
using SelfCascade.Models.Clip;
using SelfCascade.Pipelines;
using SelfCascade.Runtime;
using SelfCascade.Schedulers;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Bench;

/// <summary>
/// `cascade`: a whole self-cascade on random-weight networks, repeated (default 5 runs after one short warm-up run),
/// with per-stage wall time and peak resident memory, and the overhead measured directly inside each run: the
/// pipeline's network-call timer (<see cref="StableDiffusionPipeline.CallTimer"/>) records the wall time of every
/// UNet and VAE call, and the overhead is the run's wall time minus those intervals (text encoding, noise, scheduler
/// arithmetic, pivot resize, guidance, image conversion: target under 5% of the total). Reported per run and as
/// median and min-max over the runs.
/// </summary>
public static class CascadeBench
{
    private sealed record RunTimes(double TotalMs, double UnetMs, double VaeMs, double TextMs, double[] StageWallMs,
        double[] StageUnetMs, int[] StageUnetCalls, double DecodeWallMs, double[] PeakMiB)
    {
        public double OverheadMs => TotalMs - UnetMs - VaeMs;
    }

    public static void Run(Args opts, Device device, ScalarType dtype)
    {
        var model = opts.Get("model") ?? "medium";
        var (unetJson, vaeJson, context) = model switch
        {
            "medium" => (BenchModels.MediumSd21Unet, BenchModels.MediumVae, 256),
            "sd21" => (BenchModels.ArchConfig("unet_sd21_base.json")!, BenchModels.ArchConfig("vae_sd.json")!, 1024),
            _ => throw new ArgumentException($"cascade bench supports medium and sd21, not '{model}'"),
        };
        var target = PixelSize.Parse(opts.Get("size") ?? "1024x1024");
        int steps = int.Parse(opts.Get("steps") ?? "20", CultureInfo.InvariantCulture);
        int repeats = int.Parse(opts.Get("repeats") ?? "5", CultureInfo.InvariantCulture);
        if (repeats < 1) throw new ArgumentException("--repeats must be at least 1");
        using var pipe = BuildPipeline(unetJson, vaeJson, context, device, dtype);
        CascadeRequest Request(int n) => new()
        {
            Request = new GenerationRequest("a photo of a corgi in a field of flowers") { Steps = n, Seed = 0, Width = target.Width, Height = target.Height },
            Method = GenerationMethod.SelfCascade,
        };
        var request = Request(steps);
        var plan = CascadeGenerator.Plan(pipe, target.Width, target.Height, request);
        // Warm-up: the same cascade with 2 steps, so every stage size and the final decode have run once.
        using (var warm = CascadeGenerator.Generate(pipe, Request(2))) { }

        var runs = new List<RunTimes>();
        for (int r = 0; r < repeats; r++)
        {
            var calls = new NetworkCallTotals();
            var peaks = new StagePeaks();
            pipe.CallTimer = calls;
            ResidentMemory.ResetPeak();
            var clock = Stopwatch.StartNew();
            using var result = CascadeGenerator.Generate(pipe, request, peaks);
            double totalMs = clock.Elapsed.TotalMilliseconds;
            pipe.CallTimer = null;
            peaks.Finish();
            int n = plan.Stages.Count;
            runs.Add(new RunTimes(totalMs, calls.Total(NetworkCall.Unet).TotalMilliseconds,
                (calls.Total(NetworkCall.VaeDecode) + calls.Total(NetworkCall.VaeEncode)).TotalMilliseconds,
                calls.Total(NetworkCall.TextEncoder).TotalMilliseconds,
                [.. result.Stages.Select(st => st.Seconds * 1000)],
                [.. Enumerable.Range(0, n).Select(i => calls.UnetInStage(i).Total.TotalMilliseconds)],
                [.. Enumerable.Range(0, n).Select(i => calls.UnetInStage(i).Count)],
                result.Timings["decode"] * 1000, [.. Enumerable.Range(0, n + 1).Select(peaks.Peak)]));
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"run {r + 1}/{repeats}: {totalMs:F0} ms, outside UNet/VAE {runs[^1].OverheadMs:F0} ms"));
        }

        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine($"# Self-cascade to {target}, {model} shapes, random weights, {device.type} {TorchRuntime.DTypeName(dtype)}, {torch.get_num_threads()} threads, {steps} steps, strength 0.7, {repeats} runs after a warm-up");
        Console.WriteLine();
        Console.WriteLine("Medians over the runs. \"UNet in-run\" sums the wall time of the stage's UNet calls as the pipeline made them (one batched CFG call per step).");
        Console.WriteLine();
        Console.WriteLine("| stage | size | UNet calls | stage wall (ms) | UNet in-run (ms) | per UNet call (ms) | stage outside UNet (ms) | peak resident (MiB) |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        for (int i = 0; i < plan.Stages.Count; i++)
        {
            var s = plan.Stages[i];
            double wall = Median(runs.Select(x => x.StageWallMs[i])), unet = Median(runs.Select(x => x.StageUnetMs[i]));
            int count = runs[0].StageUnetCalls[i];
            Console.WriteLine(string.Create(inv, $"| {i} | {s.Width}x{s.Height} | {count} | {wall:F0} | {unet:F0} | {unet / Math.Max(1, count):F1} | {Median(runs.Select(x => x.StageWallMs[i] - x.StageUnetMs[i])):F1} | {runs.Max(x => x.PeakMiB[i]):F0} |"));
        }
        Console.WriteLine(string.Create(inv, $"| decode | {target} | - | {Median(runs.Select(x => x.DecodeWallMs)):F0} | VAE in-run {Median(runs.Select(x => x.VaeMs)):F0} | - | {Median(runs.Select(x => x.DecodeWallMs - x.VaeMs)):F1} | {runs.Max(x => x.PeakMiB[plan.Stages.Count]):F0} |"));
        Console.WriteLine();
        Console.WriteLine("| run | total (ms) | UNet calls (ms) | VAE calls (ms) | outside UNet and VAE (ms) | share of total | of which text encoder (ms) |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        for (int r = 0; r < runs.Count; r++)
        {
            var x = runs[r];
            Console.WriteLine(string.Create(inv, $"| {r + 1} | {x.TotalMs:F0} | {x.UnetMs:F0} | {x.VaeMs:F0} | {x.OverheadMs:F1} | {100 * x.OverheadMs / x.TotalMs:F2} % | {x.TextMs:F1} |"));
        }
        string Stat(Func<RunTimes, double> f, string format) =>
            $"{Median(runs.Select(f)).ToString(format, inv)} ({runs.Min(f).ToString(format, inv)}-{runs.Max(f).ToString(format, inv)})";
        Console.WriteLine(string.Create(inv, $"| median (min-max) | {Stat(x => x.TotalMs, "F0")} | {Stat(x => x.UnetMs, "F0")} | {Stat(x => x.VaeMs, "F0")} | {Stat(x => x.OverheadMs, "F1")} | {Stat(x => 100 * x.OverheadMs / x.TotalMs, "F2")} % | {Stat(x => x.TextMs, "F1")} |"));
        Console.WriteLine();
        Console.WriteLine(string.Create(inv,
            $"Overhead, measured inside each run as wall time minus the timed UNet and VAE calls: median {Median(runs.Select(x => x.OverheadMs)):F1} ms = {Median(runs.Select(x => 100 * x.OverheadMs / x.TotalMs)):F2}% of the total (min {runs.Min(x => x.OverheadMs):F1}, max {runs.Max(x => x.OverheadMs):F1} ms over {runs.Count} runs)."));
        Console.WriteLine("Peak resident memory is reset (/proc/self/clear_refs) before each run and read at each stage's end; the column shows the largest over the runs.");
    }

    private static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToList();
        return v.Count % 2 == 1 ? v[v.Count / 2] : (v[v.Count / 2 - 1] + v[v.Count / 2]) / 2;
    }

    public static StableDiffusionPipeline BuildPipeline(string unetJson, string vaeJson, int context, Device device, ScalarType dtype)
    {
        var unet = BenchModels.Unet(unetJson, device, dtype);
        var vae = BenchModels.Vae(vaeJson, device, dtype);
        var textConfig = new ClipTextConfig
        {
            VocabSize = 49408, HiddenSize = context, IntermediateSize = context * 4, NumHiddenLayers = 4, NumAttentionHeads = 4,
            MaxPositionEmbeddings = 77, HiddenAct = "gelu",
        };
        var te = new ClipTextModel(textConfig, device, dtype);
        var tokenizer = ClipTokenizer.FromFolder(BenchModels.TokenizerDir());
        var scheduler = SchedulerFactory.Create(SchedulerConfig.StableDiffusion("DDIMScheduler"));
        return new StableDiffusionPipeline(ModelFamily.StableDiffusion2, unet, vae, scheduler, new PromptEncoder(tokenizer, te),
            device, dtype, [unet, vae, te, scheduler]);
    }

    /// <summary>Reads the peak resident memory at each stage boundary (progress reports run on the calling thread).</summary>
    private sealed class StagePeaks : IProgress<GenerationProgress>
    {
        private readonly List<double> _peaks = [];
        private int _stage = -1;
        public void Report(GenerationProgress value)
        {
            int index = value.Phase == "decode" ? value.StageCount : value.Stage;
            while (_stage < index)
            {
                if (_stage >= 0) { _peaks.Add(ResidentMemory.PeakMiB()); ResidentMemory.ResetPeak(); }
                _stage++;
            }
        }
        public void Finish() { _peaks.Add(ResidentMemory.PeakMiB()); }
        public double Peak(int i) => i < _peaks.Count ? _peaks[i] : double.NaN;
    }
}
