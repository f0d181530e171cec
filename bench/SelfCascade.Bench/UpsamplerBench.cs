using System.Diagnostics;
using System.Globalization;
using SelfCascade.Cascade;
using SelfCascade.Cascade.Upsamplers;
using SelfCascade.Pipelines;
using SelfCascade.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Bench;

/// <summary>
/// `upsamplers`: wall time of direct sampling at the target, the tuning-free cascade and the tuned cascade (lite and
/// full sets, random non-zero weights: the cost does not depend on them), as ratios to direct (the paper reports
/// 1.04x tuning-free and 1.06x tuned relative to direct inference at the target size).
/// </summary>
public static class UpsamplerBench
{
    public static void Run(Args opts, Device device, ScalarType dtype)
    {
        var target = PixelSize.Parse(opts.Get("size") ?? "512x512");
        int steps = int.Parse(opts.Get("steps") ?? "10", CultureInfo.InvariantCulture);
        using var pipe = CascadeBench.BuildPipeline(BenchModels.MediumSd21Unet, BenchModels.MediumVae, 256, device, dtype);
        using var lite = FeatureUpsamplerSet.Create(UpsamplerVariant.Lite, pipe.Unet, dtype: ScalarType.Float32);
        using var full = FeatureUpsamplerSet.Create(UpsamplerVariant.Full, pipe.Unet, dtype: ScalarType.Float32);
        Perturb(lite);
        Perturb(full);
        using var liteInjector = new FeatureUpsamplerInjector([lite]);
        using var fullInjector = new FeatureUpsamplerInjector([full]);
        double Time(GenerationMethod method, IStageFeatureInjector? injector)
        {
            var sw = Stopwatch.StartNew();
            using var r = CascadeGenerator.Generate(pipe, new CascadeRequest
            {
                Request = new GenerationRequest("a photo of a corgi") { Steps = steps, Seed = 0, Width = target.Width, Height = target.Height },
                Method = method, Injector = injector,
            });
            return sw.Elapsed.TotalSeconds;
        }
        Time(GenerationMethod.SelfCascade, liteInjector); // warm-up
        double direct = Time(GenerationMethod.Direct, null);
        double free = Time(GenerationMethod.SelfCascade, null);
        double tunedLite = Time(GenerationMethod.SelfCascade, liteInjector);
        double tunedFull = Time(GenerationMethod.SelfCascade, fullInjector);
        Console.WriteLine($"# Tuned vs tuning-free cascade to {target}, medium shapes, random weights, {device.type} {TorchRuntime.DTypeName(dtype)}, {torch.get_num_threads()} threads, {steps} steps");
        Console.WriteLine();
        Console.WriteLine("| method | upsampler parameters | wall (s) | vs direct | vs tuning-free |");
        Console.WriteLine("|---|---|---|---|---|");
        void Row(string name, long parameters, double s) => Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {name} | {parameters:N0} | {s:F2} | {s / direct:F2}x | {s / free:F2}x |"));
        Row("direct", 0, direct);
        Row("self-cascade (tuning-free)", 0, free);
        Row("self-cascade + lite", lite.ParameterCount, tunedLite);
        Row("self-cascade + full", full.ParameterCount, tunedFull);
        Console.WriteLine();
        Console.WriteLine("The tuned stage runs the frozen encoder once more per step on the low-res pivot (both CFG halves) plus the upsamplers.");
    }

    private static void Perturb(FeatureUpsamplerSet set)
    {
        using var _ = torch.no_grad();
        using var g = new Generator(5);
        foreach (var p in set.TrainableParameters())
        {
            using var noise = randn(p.shape, generator: g).mul_(0.01);
            p.add_(noise.to(p.device));
        }
    }
}
