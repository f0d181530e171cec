using System.Diagnostics;
using System.Globalization;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using SelfCascade.Server.Extras;
using SelfCascade.Server.Models;
using SelfCascade.Server.Previews;
using SelfCascade.Server.Storage;

namespace SelfCascade.Server.Jobs;

/// <summary>
/// Runs one job on the worker thread exactly as the CLI's `generate` / `upscale` would for the same options (same
/// request defaults, method choice, cascade request and PNG metadata), streaming progress, stage images and latent
/// previews as events, and writing the images into the job's folder.
/// </summary>
internal static class JobRunner
{
    public sealed record Outcome(long Seed, int Width, int Height, IReadOnlyList<string> Images, IReadOnlyList<string> StageImages,
        IReadOnlyList<JobStageTiming> Stages, IReadOnlyDictionary<string, double> Timings);

    public static Outcome Run(JobEntry entry, ModelRegistry models, ServedExtras extras, OutputStore outputs, Action<JobEvent> publish, CancellationToken ct)
    {
        var job = entry.Request ?? throw new InvalidOperationException("the job has already ended");
        var id = entry.Info.Id;
        var total = Stopwatch.StartNew();
        ct.ThrowIfCancellationRequested();
        publish(Event(id, JobEventTypes.Progress) with { Phase = "load", Fraction = 0 });
        if (job.Kind == JobKind.Custom) return RunCustom(entry, job, models, extras, outputs, publish, total, ct);
        var spec = models.Resolve(job.Model);
        var pipe = models.Acquire(spec.Name, job.Scheduler, out double loadSeconds);
        var dir = outputs.JobDir(id);
        Directory.CreateDirectory(dir);
        var request = job.Generation;
        if (job.UseModelDefaultSteps)
            request = new GenerationRequest(request.Prompt)
            {
                NegativePrompt = request.NegativePrompt, Seed = request.Seed, Steps = pipe.DefaultSteps, Guidance = request.Guidance,
                Width = request.Width, Height = request.Height, NumImages = request.NumImages,
            };
        bool upscale = job.Kind == JobKind.Upscale;
        int w = request.Width > 0 ? request.Width : pipe.NativeSize, h = request.Height > 0 ? request.Height : pipe.NativeSize;
        var method = upscale ? GenerationMethod.SelfCascade
            : job.Method ?? (w > pipe.NativeSize || h > pipe.NativeSize ? GenerationMethod.SelfCascade : GenerationMethod.Direct);
        var methodName = upscale ? "upscale" : MethodName(method);
        // As generate/upscale with --lora and --upsamplers: the LoRAs merged into the resident weights first, then the
        // injector built for the (merged) UNet. Merging into a shared pipeline is safe: one job per device runs at a
        // time (this worker thread), and both are disposed before the job ends, also on failure or cancellation
        // (LoraStack restores the weights bit for bit).
        using var loras = extras.ApplyLoras(pipe, job.Loras);
        using var injector = extras.CreateInjector(job.Upsamplers, pipe);
        var cascadeRequest = new CascadeRequest
        {
            Request = request, Method = method, BaseSize = job.BaseSize, PivotStrength = job.PivotStrength, StageOverrides = job.StageOverrides,
            PivotMode = job.PivotMode, VaeTiling = job.VaeTiling, KeepStageImages = false, Injector = injector,
        };
        var stageFiles = new List<string>();
        var progress = new SyncProgress(g =>
        {
            // Denoising fills 0..0.98, the final decode 0.99; the final event means 1.
            double fraction = g.Phase == "decode" ? 0.99 : 0.98 * (upscale
                ? ((double)g.Stage - 1 + (double)g.Step / Math.Max(1, g.TotalSteps)) / Math.Max(1, g.StageCount - 1)
                : ((double)g.Stage + (double)g.Step / Math.Max(1, g.TotalSteps)) / g.StageCount);
            publish(Event(id, JobEventTypes.Progress) with
            {
                Phase = g.Phase, Step = g.Step, TotalSteps = g.TotalSteps, Stage = g.Stage, StageCount = g.StageCount, Fraction = Math.Clamp(fraction, 0, 1),
            });
        });
        pipe.StepObserver = s => Observe(pipe, job, id, dir, s, stageFiles, entry, publish);
        CascadeResult result;
        try
        {
            result = upscale
                ? CascadeGenerator.Upscale(pipe, job.Image!, job.Scale, cascadeRequest, progress, ct)
                : CascadeGenerator.Generate(pipe, cascadeRequest, progress, ct);
        }
        finally
        {
            pipe.StepObserver = null;
        }
        using (result)
        {
            var meta = GenerationMetadata.For(request, pipe, result.Width, result.Height, spec.Path, methodName);
            if (!upscale && cascadeRequest.Method == GenerationMethod.SelfCascade)
            {
                meta["stages"] = string.Join(" -> ", result.Stages.Select(st => $"{st.Width}x{st.Height}"));
                meta["pivot_strength"] = (cascadeRequest.PivotStrength ?? pipe.DefaultPivotStrength).ToString(CultureInfo.InvariantCulture);
            }
            if (upscale) meta["scale"] = job.Scale.ToString(CultureInfo.InvariantCulture);
            if (job.Upsamplers is not null) meta["upsamplers"] = job.Upsamplers;
            if (job.Loras.Count > 0) meta["loras"] = ServedExtras.Describe(job.Loras);
            foreach (var (k, v) in job.ExtraMetadata ?? new Dictionary<string, string>()) meta.TryAdd(k, v);
            var files = new List<string>();
            for (int i = 0; i < result.Images.Count; i++)
            {
                ct.ThrowIfCancellationRequested();
                var m = new Dictionary<string, string>(meta);
                if (result.Images.Count > 1) m["image_index"] = i.ToString(CultureInfo.InvariantCulture);
                var name = $"image-{i}.png";
                result.Images[i].SavePng(outputs.PathFor(id, name), m);
                files.Add(name);
            }
            var timings = new Dictionary<string, double> { ["load"] = loadSeconds };
            foreach (var (k, v) in result.Timings) timings[k] = v;
            timings["total"] = total.Elapsed.TotalSeconds;
            return new Outcome(request.Seed, result.Width, result.Height, files, stageFiles,
                result.Stages.Select(st => new JobStageTiming(st.Index, st.Width, st.Height, st.Steps, st.Strength, st.Guidance, st.Seconds)).ToList(),
                timings);
        }
    }

    private static Outcome RunCustom(JobEntry entry, JobRequest job, ModelRegistry models, ServedExtras extras, OutputStore outputs, Action<JobEvent> publish,
        Stopwatch total, CancellationToken ct)
    {
        var id = entry.Info.Id;
        var dir = outputs.JobDir(id);
        Directory.CreateDirectory(dir);
        var r = job.Custom!(new CustomJobContext(id, models, outputs, dir, publish, ct) { Extras = extras });
        var timings = new Dictionary<string, double>(r.Timings) { ["total"] = total.Elapsed.TotalSeconds };
        return new Outcome(r.Seed, r.Width, r.Height, r.Images, [], [], timings);
    }

    /// <summary>After each step: the finished earlier stage's decoded image (saved and sent), or every N steps a cheap preview.</summary>
    private static void Observe(StableDiffusionPipeline pipe, JobRequest job, string id, string dir, DenoiseStepLatents s,
        List<string> stageFiles, JobEntry entry, Action<JobEvent> publish)
    {
        if (s.Step == s.TotalSteps && s.Stage < s.StageCount - 1)
        {
            var images = pipe.DecodeToImages(s.Latents);
            int w = images[0].Width, h = images[0].Height;
            for (int i = 0; i < images.Count; i++)
            {
                var name = $"stage{s.Stage}_{w}x{h}{(images.Count > 1 ? $"-{i}" : "")}.png";
                images[i].SavePng(Path.Combine(dir, name));
                stageFiles.Add(name);
                lock (entry) entry.StageFiles.Add(name);
            }
            publish(Event(id, JobEventTypes.Stage) with
            {
                Stage = s.Stage, StageCount = s.StageCount, Png = images[0].EncodePng(), Width = w, Height = h,
                File = $"stage{s.Stage}_{w}x{h}{(images.Count > 1 ? "-0" : "")}.png",
            });
        }
        else if (job.PreviewEvery > 0 && s.Step % job.PreviewEvery == 0 && s.Step < s.TotalSteps)
        {
            var preview = LatentPreview.Render(s.Latents, pipe.VaeScaleFactor, pipe.Family);
            publish(Event(id, JobEventTypes.Preview) with
            {
                Stage = s.Stage, StageCount = s.StageCount, Step = s.Step, TotalSteps = s.TotalSteps, Png = preview.EncodePng(),
                Width = preview.Width, Height = preview.Height,
            });
        }
    }

    public static string MethodName(GenerationMethod m) => m switch
    {
        GenerationMethod.Direct => "direct",
        GenerationMethod.AttnScale => "attn-scale",
        GenerationMethod.UpscaleOnly => "upscale-only",
        _ => "self-cascade",
    };

    private static JobEvent Event(string id, string type) => new() { Sequence = 0, JobId = id, Type = type, Time = DateTimeOffset.UtcNow };

    /// <summary>Reports on the calling (worker) thread, in order (System.Progress would post to the thread pool).</summary>
    private sealed class SyncProgress(Action<GenerationProgress> report) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => report(value);
    }
}
