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
/// `cascade`: a whole self-cascade on random-weight networks, per stage wall time and peak resident memory, and the
/// overhead of everything outside the UNet and VAE calls: total - sum(stage UNet steps x timed UNet step) - timed
/// VAE decode (target: under 5% of the total).
/// </summary>
public static class CascadeBench
{
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
        using var pipe = BuildPipeline(unetJson, vaeJson, context, device, dtype);
        var request = new CascadeRequest
        {
            Request = new GenerationRequest("a photo of a corgi in a field of flowers") { Steps = steps, Seed = 0, Width = target.Width, Height = target.Height },
            Method = GenerationMethod.SelfCascade,
        };
        var plan = CascadeGenerator.Plan(pipe, target.Width, target.Height, request);
        var peaks = new StagePeaks();
        using (var warm = CascadeGenerator.Generate(pipe, new CascadeRequest
        {
            Request = new GenerationRequest("warm up") { Steps = 2, Width = plan.Base.Width, Height = plan.Base.Height },
            Method = GenerationMethod.Direct,
        })) { }
        ResidentMemory.ResetPeak();
        var total = Stopwatch.StartNew();
        using var result = CascadeGenerator.Generate(pipe, request, peaks);
        double totalMs = total.Elapsed.TotalMilliseconds;
        peaks.Finish();

        // The UNet and VAE alone, at each stage's size, timed the same way as `unet-vae`.
        using var mode = torch.inference_mode();
        var unetMs = new List<double>();
        foreach (var s in plan.Stages)
        {
            using var x = randn([2, 4, s.LatentHeight, s.LatentWidth], dtype: dtype, device: device);
            using var t = tensor(new long[] { 500 }, device: device);
            using var ctx = randn([2, 77, context], dtype: dtype, device: device);
            unetMs.Add(Program.Time(2, device, () => { using var o = pipe.Unet.Forward(x, t, ctx); }));
        }
        double vaeMs;
        using (var z = randn([1, 4, plan.Final.LatentHeight, plan.Final.LatentWidth], dtype: ScalarType.Float32, device: device))
            vaeMs = Program.Time(1, device, () => { using var o = pipe.DecodeLatents(z); });
        double networkMs = plan.Stages.Select((s, i) => s.DenoisingSteps * unetMs[i]).Sum() + vaeMs;

        Console.WriteLine($"# Self-cascade to {target}, {model} shapes, random weights, {device.type} {TorchRuntime.DTypeName(dtype)}, {torch.get_num_threads()} threads, {steps} steps, strength 0.7");
        Console.WriteLine();
        Console.WriteLine("| stage | size | UNet steps | stage wall (ms) | UNet step alone (ms) | peak resident (MiB) |");
        Console.WriteLine("|---|---|---|---|---|---|");
        for (int i = 0; i < plan.Stages.Count; i++)
        {
            var s = plan.Stages[i];
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {i} | {s.Width}x{s.Height} | {s.DenoisingSteps} | {result.Stages[i].Seconds * 1000:F0} | {unetMs[i]:F1} | {peaks.Peak(i):F0} |"));
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| decode | {target} | - | {result.Timings["decode"] * 1000:F0} | VAE alone {vaeMs:F0} | {peaks.Peak(plan.Stages.Count):F0} |"));
        Console.WriteLine();
        double overhead = totalMs - networkMs;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Total {totalMs:F0} ms; UNet steps + VAE decode timed alone {networkMs:F0} ms; everything else (text encoding, noise, scheduler, pivot, guidance, conversion) {overhead:F0} ms = {100 * overhead / totalMs:F1}% of the total."));
        Console.WriteLine("Peak resident memory is reset (/proc/self/clear_refs) before the run and read at each stage's end.");
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
