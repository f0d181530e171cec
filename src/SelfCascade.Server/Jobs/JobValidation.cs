using SelfCascade.Cascade;
using SelfCascade.Pipelines;
using SelfCascade.Schedulers;

namespace SelfCascade.Server.Jobs;

/// <summary>What one request may ask for (the server's plan limits; --max-pixels etc.).</summary>
public sealed record JobLimits
{
    /// <summary>Output pixels (width x height) at most; default 4096².</summary>
    public long MaxPixels { get; init; } = 4096L * 4096;
    /// <summary>Longest side at most.</summary>
    public int MaxSide { get; init; } = 8192;
    public int MaxSteps { get; init; } = 500;
    public int MaxImages { get; init; } = 8;
    public int MaxPromptChars { get; init; } = 4000;
    public double MaxGuidance { get; init; } = 100;
    /// <summary>Input image for upscaling: pixels at most (checked before decoding).</summary>
    public long MaxInputPixels { get; init; } = 2048L * 2048;
}

/// <summary>Checks a request against the model's geometry and the limits before it is queued: failures are 400s.</summary>
public static class JobValidation
{
    public static void Validate(JobRequest r, ModelGeometry model, JobLimits limits)
    {
        if (r.Kind == JobKind.Custom)
        {
            // The submitting group validated its own format (ComfyUI: ComfyValidator); only the work must be there.
            if (r.Custom is null) throw new JobRequestException("a custom job needs its work");
            return;
        }
        var g = r.Generation ?? throw new JobRequestException("no generation parameters");
        if (g.Prompt is null) throw new JobRequestException("prompt is missing");
        if (g.Prompt.Length > limits.MaxPromptChars || (g.NegativePrompt?.Length ?? 0) > limits.MaxPromptChars)
            throw new JobRequestException($"prompt longer than {limits.MaxPromptChars} characters");
        if (r.Kind == JobKind.TextToImage && string.IsNullOrWhiteSpace(g.Prompt)) throw new JobRequestException("prompt is empty");
        if (!r.UseModelDefaultSteps && (g.Steps < 1 || g.Steps > limits.MaxSteps))
            throw new JobRequestException($"steps must be in 1..{limits.MaxSteps} (got {g.Steps})");
        if (g.NumImages < 1 || g.NumImages > limits.MaxImages) throw new JobRequestException($"num_images must be in 1..{limits.MaxImages} (got {g.NumImages})");
        if (g.Seed < 0) throw new JobRequestException($"seed must be non-negative (got {g.Seed})");
        if (g.Guidance is double gs && (double.IsNaN(gs) || gs < 0 || gs > limits.MaxGuidance))
            throw new JobRequestException($"guidance must be in 0..{limits.MaxGuidance} (got {gs})");
        if (r.PivotStrength is double ps && !(ps > 0 && ps <= 1)) throw new JobRequestException($"pivot_strength {ps} must be in (0, 1]");
        if (r.Scheduler is string s && !SchedulerFactory.Names.Contains(s))
            throw new JobRequestException($"unknown scheduler '{Short(s)}'; valid: {string.Join(", ", SchedulerFactory.Names)}");
        if (r.PreviewEvery < 0) throw new JobRequestException("preview_every must be ≥ 0");
        foreach (var (stage, o) in r.StageOverrides)
        {
            if (stage < 0 || stage > 16) throw new JobRequestException($"stage override for stage {stage}: no such stage");
            if (o.Steps is int st && (st < 1 || st > limits.MaxSteps)) throw new JobRequestException($"stage {stage} steps must be in 1..{limits.MaxSteps}");
            if (o.Strength is double str && !(str > 0 && str <= 1)) throw new JobRequestException($"stage {stage} strength must be in (0, 1]");
            if (o.GuidanceScale is double gg && (double.IsNaN(gg) || gg < 0 || gg > limits.MaxGuidance))
                throw new JobRequestException($"stage {stage} guidance must be in 0..{limits.MaxGuidance}");
        }
        int f = model.VaeScaleFactor;
        if (r.Kind == JobKind.Upscale)
        {
            var img = r.Image ?? throw new JobRequestException("upscale needs an image");
            if (r.Scale is not (2 or 4)) throw new JobRequestException($"scale must be 2 or 4 (got {r.Scale})");
            if ((long)img.Width * img.Height > limits.MaxInputPixels) throw new JobRequestException($"input image {img.Width}x{img.Height} exceeds {limits.MaxInputPixels} pixels");
            CheckSize((long)img.Width * r.Scale, (long)img.Height * r.Scale, limits, "output");
            return;
        }
        long w = g.Width > 0 ? g.Width : model.NativeSize, h = g.Height > 0 ? g.Height : model.NativeSize;
        if (g.Width < 0 || g.Height < 0) throw new JobRequestException($"size {g.Width}x{g.Height} must be positive");
        CheckSize(w, h, limits, "size");
        if (w % f != 0 || h % f != 0) throw new JobRequestException($"size {w}x{h} must be a multiple of {f} (the VAE factor) on both sides");
        if (r.BaseSize is { } b)
        {
            CheckSize(b.Width, b.Height, limits, "base_size");
            if (b.Width <= 0 || b.Height <= 0 || b.Width % f != 0 || b.Height % f != 0)
                throw new JobRequestException($"base_size {b.Width}x{b.Height} must be positive multiples of {f}");
        }
        var method = r.Method ?? (w > model.NativeSize || h > model.NativeSize ? GenerationMethod.SelfCascade : GenerationMethod.Direct);
        if (method is GenerationMethod.SelfCascade or GenerationMethod.UpscaleOnly)
        {
            try
            {
                var steps = r.UseModelDefaultSteps ? model.Defaults.Steps ?? ModelDefaults.DiffusersSteps : g.Steps;
                var plan = CascadeGenerator.Plan(model, (int)w, (int)h, new CascadeRequest
                {
                    Request = new GenerationRequest(g.Prompt) { Width = (int)w, Height = (int)h, Steps = steps, Guidance = g.Guidance, NumImages = g.NumImages },
                    Method = method, BaseSize = r.BaseSize, PivotStrength = r.PivotStrength, StageOverrides = r.StageOverrides,
                    PivotMode = r.PivotMode, VaeTiling = r.VaeTiling,
                });
                if (plan.Stages.Any(st => st.DenoisingSteps < 1 && st.Index > 0))
                    throw new JobRequestException("a stage's steps x strength leaves no step to run");
            }
            catch (ArgumentException e) { throw new JobRequestException("plan: " + e.Message); }
            catch (InvalidOperationException e) { throw new JobRequestException("plan: " + e.Message); }
        }
    }

    private static void CheckSize(long w, long h, JobLimits limits, string what)
    {
        if (w <= 0 || h <= 0) throw new JobRequestException($"{what} {w}x{h} must be positive");
        if (w > limits.MaxSide || h > limits.MaxSide || w * h > limits.MaxPixels)
            throw new JobRequestException($"{what} {w}x{h} is beyond this server's limits ({limits.MaxPixels} pixels, {limits.MaxSide} per side)");
    }

    private static string Short(string s) => s.Length <= 40 ? s : s[..40] + "...";
}
