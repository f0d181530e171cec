using System.Diagnostics;
using System.Text.Json;
using SelfCascade.Cascade;
using SelfCascade.IO;
using SelfCascade.Models;
using SelfCascade.Models.Unet;
using SelfCascade.Models.Vae;
using SelfCascade.Pipelines;
using SelfCascade.Runtime.Doctor;
using SelfCascade.Schedulers;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Benchmarks;

/// <summary>One line of the `bench gpu` table, with diffusers' matching measurement (shared/bench) when there is one.</summary>
public sealed record GpuBenchRow(string Kind, string Model, int Px, double OursMs)
{
    /// <summary>Peak device memory of the row (GiB), where it was measured.</summary>
    [System.Text.Json.Serialization.JsonPropertyName("ours_peak_gib")]
    public double? OursPeakGiB { get; init; }
    public double? ReferenceMs { get; init; }
    [System.Text.Json.Serialization.JsonPropertyName("reference_peak_gib")]
    public double? ReferencePeakGiB { get; init; }
    public string Note { get; init; } = "";
    /// <summary>ours / diffusers (below 1 = faster than diffusers).</summary>
    public double? Ratio => ReferenceMs is > 0 ? OursMs / ReferenceMs : null;
}

public sealed record GpuBenchOptions
{
    public required Device Device { get; init; }
    public ScalarType DType { get; init; } = ScalarType.Float16;
    /// <summary>Tiny networks at 1/16 of each size and a few steps: the CPU smoke run that keeps the command alive.</summary>
    public bool Smoke { get; init; }
    public int Warmup { get; init; } = 1;
    public int Repeats { get; init; } = 5;
    /// <summary>Untiled VAE decodes that would need more than this are tiled (the issue's 20 GiB rule).</summary>
    public long UntiledVaeLimitBytes { get; init; } = 20L << 30;
    /// <summary>Folder with diffusers' measurements (h200-unet-vae-anchor.json, h200-cascade-peer.json).</summary>
    public string? ReferenceDir { get; init; }
    /// <summary>Samples device memory in use (bytes); null where none (CPU).</summary>
    public Func<long?>? DeviceMemoryUsed { get; init; }
}

/// <summary>
/// `bench gpu`: full-size SD 2.1-base and SDXL-base shaped networks with random weights (no checkpoints), timed as
/// diffusers' reference runs were (shared/bench/README.md): UNet forward with batch 2 (one CFG step), VAE decode with
/// batch 1, and the tuning-free cascade end to end (UNet steps, pivots, VAE decode; text encoders excluded, they
/// run once), each beside diffusers' number and the ratio.
/// </summary>
public static class GpuBenchmark
{
    public static readonly int[] Sd21Sizes = [512, 1024, 2048, 4096];
    public static readonly int[] SdxlSizes = [1024, 2048, 4096];
    public static readonly int[] VaeSizes = [512, 1024, 2048, 4096];

    public static IReadOnlyList<GpuBenchRow> Run(GpuBenchOptions o, IProgress<string>? progress = null)
    {
        using var mode = inference_mode();
        var rows = new List<GpuBenchRow>();
        var reference = ReferenceRuns.Load(o.ReferenceDir);
        using var peak = new PeakMemory(o.DeviceMemoryUsed);
        int Scale(int px) => o.Smoke ? px / 16 : px;

        // SD 2.1-base: the cascade first (fresh allocator, as diffusers' run), then the per-size rows.
        using (var unet = Build<UNet2DConditionModel>(o.Smoke ? BenchNetworks.TinySd21Unet : BenchNetworks.Sd21BaseUnet, o, c => new UNet2DConditionModel(UNet2DConditionConfig.FromJson(c))))
        using (var vae = Build<AutoencoderKL>(o.Smoke ? BenchNetworks.TinyVae : BenchNetworks.SdVae, o, c => new AutoencoderKL(AutoencoderKLConfig.FromJson(c))))
        {
            progress?.Report("sd21-base cascade 512 -> 1024 -> 2048");
            rows.Add(Cascade(unet, vae, "sd21-base", [512, 1024, 2048], "DDIMScheduler", tiledVae: false, o, peak, reference));
            foreach (var px in Sd21Sizes)
            {
                progress?.Report($"sd21-base unet {px}");
                rows.Add(UnetStep(unet, "sd21-base", px, Scale(px), o, peak, reference));
            }
            foreach (var px in VaeSizes)
            {
                progress?.Report($"vae decode {px}");
                rows.Add(VaeDecode(vae, px, Scale(px), o, peak, reference));
            }
        }
        using (var unet = Build<UNet2DConditionModel>(o.Smoke ? BenchNetworks.TinySdxlUnet : BenchNetworks.SdxlBaseUnet, o, c => new UNet2DConditionModel(UNet2DConditionConfig.FromJson(c))))
        using (var vae = Build<AutoencoderKL>(o.Smoke ? BenchNetworks.TinyVae : BenchNetworks.SdVae, o, c => new AutoencoderKL(AutoencoderKLConfig.FromJson(c))))
        {
            progress?.Report("sdxl cascade 1024 -> 2048 -> 4096");
            rows.Add(Cascade(unet, vae, "sdxl", [1024, 2048, 4096], "EulerDiscreteScheduler", tiledVae: true, o, peak, reference));
            foreach (var px in SdxlSizes)
            {
                progress?.Report($"sdxl unet {px}");
                rows.Add(UnetStep(unet, "sdxl", px, Scale(px), o, peak, reference));
            }
        }
        return rows;
    }

    private static T Build<T>(string json, GpuBenchOptions o, Func<ConfigJson, T> make) where T : nn.Module
    {
        using var _ = ModelConstruction.On(o.Device, o.DType);
        var m = make(ConfigJson.Parse(json, "bench network"));
        m.eval();
        return m;
    }

    private static void Sync(Device d)
    {
        if (d.type == DeviceType.CUDA) torch.cuda.synchronize(d);
    }

    /// <summary>Median milliseconds of <paramref name="run"/> after warm-up, each run ended by a device sync.</summary>
    private static double Median(GpuBenchOptions o, int repeats, Action run)
    {
        for (int i = 0; i < o.Warmup; i++) { run(); Sync(o.Device); }
        var times = new List<double>();
        for (int i = 0; i < repeats; i++)
        {
            var sw = Stopwatch.StartNew();
            run();
            Sync(o.Device);
            times.Add(sw.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        return times[times.Count / 2];
    }

    private static (Tensor States, UNetAddedConditions? Added, Tensor? Pooled, Tensor? Ids) Conditioning(UNet2DConditionModel unet, int batch, int px, GpuBenchOptions o)
    {
        var cfg = unet.Config;
        var states = randn([batch, 77, cfg.CrossAttentionDim[0]], dtype: o.DType, device: o.Device);
        if (!cfg.HasTextTimeEmbedding) return (states, null, null, null);
        long pooledDim = cfg.ProjectionClassEmbeddingsInputDim!.Value - 6L * cfg.AdditionTimeEmbedDim!.Value;
        var pooled = randn([batch, pooledDim], dtype: o.DType, device: o.Device);
        var ids = tensor(new float[] { px, px, 0, 0, px, px }, [1, 6]).to(o.DType).to(o.Device).repeat(batch, 1);
        return (states, new UNetAddedConditions(pooled, ids), pooled, ids);
    }

    private static GpuBenchRow UnetStep(UNet2DConditionModel unet, string model, int px, int runPx, GpuBenchOptions o, PeakMemory peak, ReferenceRuns reference)
    {
        using var scope = NewDisposeScope();
        long side = runPx / 8;
        var sample = randn([2, 4, side, side], dtype: o.DType, device: o.Device);
        var t = tensor(500L, device: o.Device);
        var (states, added, _, _) = Conditioning(unet, 2, runPx, o);
        peak.Reset();
        int repeats = px >= 4096 && !o.Smoke ? Math.Max(1, Math.Min(o.Repeats, 3)) : o.Repeats;
        double ms = Median(o, repeats, () => { using var s = NewDisposeScope(); unet.Forward(sample, t, states, added); });
        var r = reference.Find("unet_fwd_cfg_batch2", model, px);
        return new GpuBenchRow("unet step (cfg batch 2)", model, px, ms)
        {
            OursPeakGiB = peak.PeakGiB, ReferenceMs = r?.Ms, ReferencePeakGiB = r?.PeakGiB, Note = $"median of {repeats}",
        };
    }

    private static GpuBenchRow VaeDecode(AutoencoderKL vae, int px, int runPx, GpuBenchOptions o, PeakMemory peak, ReferenceRuns reference)
    {
        using var scope = NewDisposeScope();
        long side = runPx / 8;
        var latent = randn([1, 4, side, side], dtype: o.DType, device: o.Device);
        int bytes = o.DType == ScalarType.Float32 ? 4 : 2;
        bool tiled = VaeMemoryEstimate.UntiledDecodeBytes(px, px, 1, bytes) > o.UntiledVaeLimitBytes;
        var options = new TiledVaeOptions { ScaleFactor = 8 };
        peak.Reset();
        int repeats = px >= 4096 && !o.Smoke ? Math.Max(1, Math.Min(o.Repeats, 3)) : o.Repeats;
        double ms = Median(o, repeats, () =>
        {
            using var s = NewDisposeScope();
            if (tiled) TiledVae.Decode(vae.Decode, latent, options); else vae.Decode(latent);
        });
        var r = reference.Find("vae_decode_batch1", null, px);
        return new GpuBenchRow("vae decode (batch 1)", "sd-vae", px, ms)
        {
            OursPeakGiB = peak.PeakGiB, ReferenceMs = r?.Ms, ReferencePeakGiB = r?.PeakGiB,
            Note = (tiled ? "tiled (untiled needs > 20 GiB)" : "untiled") + $", median of {repeats}",
        };
    }

    /// <summary>The tuning-free cascade as the peer ran it: 50 steps at the base size, then per stage a bilinear
    /// pivot, re-noise at strength 0.7 (35 of 50 steps), denoise; one VAE decode at the end.</summary>
    private static GpuBenchRow Cascade(UNet2DConditionModel unet, AutoencoderKL vae, string model, int[] sizes, string scheduler, bool tiledVae,
        GpuBenchOptions o, PeakMemory peak, ReferenceRuns reference)
    {
        using var scope = NewDisposeScope();
        int steps = o.Smoke ? 4 : 50;
        const double strength = 0.7, guidance = 7.5;
        var config = SchedulerConfig.StableDiffusion(scheduler) with { TimestepSpacing = "leading", StepsOffset = 1 };
        var sched = SchedulerFactory.Create(config);
        var family = unet.Config.HasTextTimeEmbedding ? ModelFamily.StableDiffusionXL : ModelFamily.StableDiffusion2;
        // No text encoders: the prompt is encoded once per image and is not what this row measures.
        var pipe = new StableDiffusionPipeline(family, unet, vae, sched, null!, o.Device, o.DType, [sched], vaeDType: o.DType);
        var (states, _, pooled, _) = Conditioning(unet, 1, sizes[0], o);
        var emb = new PromptEmbeddings
        {
            Positive = states, Negative = states.clone(),
            PooledPositive = pooled, PooledNegative = pooled?.clone(),
        };
        int Px(int px) => o.Smoke ? px / 16 : px;
        var stageSeconds = new List<double>();
        void RunOnce()
        {
            using var s = NewDisposeScope();
            using var generator = new Generator(0);
            var sw = Stopwatch.StartNew();
            sched.SetTimesteps(steps);
            var noise = pipe.InitialNoise(generator, 1, Px(sizes[0]), Px(sizes[0]));
            using var sigma = tensor(sched.InitNoiseSigma, ScalarType.Float32, device: o.Device);
            var x = pipe.Denoise(noise * sigma, sched.Timesteps, emb, guidance, 1, Px(sizes[0]), Px(sizes[0]), generator);
            Sync(o.Device);
            stageSeconds.Add(sw.Elapsed.TotalSeconds);
            for (int k = 1; k < sizes.Length; k++)
            {
                sw.Restart();
                int p = Px(sizes[k]);
                var pivot = Pivot.Upsample(x, p / 8, p / 8);
                var (ts, _) = sched.GetImg2ImgTimesteps(steps, strength);
                var n = pipe.InitialNoise(generator, 1, p, p);
                var noisy = sched.AddNoise(pivot, n, ts[0]);
                x = pipe.Denoise(noisy, ts, emb, guidance, 1, p, p, generator);
                Sync(o.Device);
                stageSeconds.Add(sw.Elapsed.TotalSeconds);
            }
            sw.Restart();
            pipe.DecodeLatents(x, tiledVae ? VaeTiling.On : VaeTiling.Off);
            Sync(o.Device);
            stageSeconds.Add(sw.Elapsed.TotalSeconds);
        }
        if (o.Smoke) RunOnce(); // warm-up is free in the smoke run; a full run is too long to repeat
        stageSeconds.Clear();
        peak.Reset();
        var total = Stopwatch.StartNew();
        RunOnce();
        double ms = total.Elapsed.TotalMilliseconds;
        var r = reference.FindCascade(model);
        var stages = string.Join(" + ", stageSeconds.Select(v => v.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture)));
        return new GpuBenchRow($"cascade {string.Join("->", sizes)} ({(scheduler.StartsWith("DDIM") ? "DDIM" : "Euler")} {steps}/{(int)(steps * strength)}/{(int)(steps * strength)}{(tiledVae ? ", tiled VAE" : "")})",
            model, sizes[^1], ms)
        {
            OursPeakGiB = peak.PeakGiB, ReferenceMs = r?.Ms, ReferencePeakGiB = r?.PeakGiB, Note = $"stages+vae s: {stages}; one run, no text encoders",
        };
    }

    /// <summary>Samples device memory in use on a background thread (every 2 ms) and keeps the maximum growth.</summary>
    private sealed class PeakMemory : IDisposable
    {
        private readonly Func<long?>? _used;
        private readonly Thread? _thread;
        private volatile bool _stop;
        private long _baseline, _max;

        public PeakMemory(Func<long?>? used)
        {
            _used = used;
            if (used is null || used() is null) { _used = null; return; }
            _baseline = used()!.Value;
            _thread = new Thread(() =>
            {
                while (!_stop)
                {
                    if (used() is long u) InterlockedMax(ref _max, u);
                    Thread.Sleep(2);
                }
            }) { IsBackground = true, Name = "bench peak memory" };
            _thread.Start();
        }

        private static void InterlockedMax(ref long target, long value)
        {
            long seen;
            while (value > (seen = Interlocked.Read(ref target)) && Interlocked.CompareExchange(ref target, value, seen) != seen) { }
        }

        public void Reset() { if (_used?.Invoke() is long u) Interlocked.Exchange(ref _max, u); }

        /// <summary>GiB above the memory in use when the benchmark started (weights, activations and the allocator's cache).</summary>
        public double? PeakGiB => _used is null ? null : Math.Max(0, Interlocked.Read(ref _max) - _baseline) / (double)(1L << 30);

        public void Dispose() { _stop = true; _thread?.Join(); }
    }
}

/// <summary>diffusers' measurements from shared/bench (h200-unet-vae-anchor.json, h200-cascade-peer.json).</summary>
public sealed class ReferenceRuns
{
    public sealed record Entry(string What, string? Model, int? Px, double Ms, double? PeakGiB);
    public IReadOnlyList<Entry> Entries { get; }
    public string? Source { get; }

    private ReferenceRuns(List<Entry> entries, string? source) { Entries = entries; Source = source; }

    public static ReferenceRuns Load(string? dir)
    {
        var entries = new List<Entry>();
        if (dir is null || !Directory.Exists(dir)) return new(entries, null);
        foreach (var file in Directory.EnumerateFiles(dir, "*.json").Order(StringComparer.Ordinal))
        {
            if (new FileInfo(file).Length > 1 << 20) continue; // these are small tables; never read an unbounded file
            using var doc = JsonDocument.Parse(File.ReadAllText(file));
            if (doc.RootElement.ValueKind != JsonValueKind.Array) continue;
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty("what", out var what)) continue;
                string? model = e.TryGetProperty("model", out var m) ? m.GetString() : null;
                int? px = e.TryGetProperty("px", out var p) && p.ValueKind == JsonValueKind.Number ? p.GetInt32() : null;
                double? ms = e.TryGetProperty("ms_median", out var md) ? md.GetDouble()
                    : e.TryGetProperty("total_s", out var ts) ? ts.GetDouble() * 1000 : null;
                double? peak = e.TryGetProperty("peak_GiB", out var pg) ? pg.GetDouble() : null;
                if (ms is double v) entries.Add(new Entry(what.GetString() ?? "", model, px, v, peak));
            }
        }
        return new(entries, dir);
    }

    public Entry? Find(string what, string? model, int px) =>
        Entries.FirstOrDefault(e => e.What == what && e.Px == px && (model is null || e.Model == model));

    /// <summary>The self-cascade peer of a model (the direct-inference entry is not our cascade's peer).</summary>
    public Entry? FindCascade(string model) =>
        Entries.FirstOrDefault(e => e.What.StartsWith("self-cascade", StringComparison.Ordinal) && e.Model == model);
}
