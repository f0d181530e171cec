using System.Globalization;

namespace SelfCascade.Cascade;

/// <summary>
/// Chooses the cascade's stage sizes (paper §3: stage r generates at 2^r the base edge, each stage ≤ 4× the pixels of
/// the previous one; docs/ARCHITECTURE.md §7) and fills in steps, strength, guidance and cost.
/// <para>Rules:</para>
/// <list type="bullet">
/// <item>Every stage keeps the target's aspect ratio as closely as the granularity allows and grows each side by at
/// most 2× (a pivot upsample larger than 2× leaves the later stage too little structure to refine).</item>
/// <item>Base (automatic): first an exact ×2 chain, target / 2^k for the smallest k whose base is a multiple of the
/// granularity with an area in [MinBaseAreaRatio, MaxBaseAreaRatio] × native (512→1024→2048, 768x384→…→3072x1536: pivot
/// upsamples are then exact ×2, as in the paper). Otherwise the granularity-multiple size of about the native area at
/// the target's aspect, preferring (1) aspect error ≤ MaxAspectError, (2) the fewest stages, (3) the closest aspect and area.</item>
/// <item>Intermediate stages: granularity multiples near the geometric mean path from base to target, constrained so
/// that each step is ≤ 2× per side and the remaining steps can still reach the target.</item>
/// <item>Last stage: exactly the target, which must be a multiple of the VAE factor (8), as diffusers' pipelines
/// require. It need not be a multiple of the granularity: diffusers' UNet2DConditionModel then passes explicit
/// upsample sizes (<c>forward_upsample_size</c>), so 1920x1080 runs as diffusers would run it, with no resize or crop
/// (a crop from a rounded-up size would cost compute and shift the framing; a resize would blur the final image).</item>
/// </list>
/// </summary>
public static class ScalePlanner
{
    /// <summary>Weight of the log aspect error against the log area error when scoring candidate sizes.</summary>
    private const double AspectWeight = 4.0;

    /// <summary>Plans the cascade to <paramref name="target"/>; throws <see cref="ScalePlanException"/> with the reason when it cannot.</summary>
    public static ScalePlan Plan(PixelSize target, ScalePlanOptions? options = null)
    {
        var o = options ?? new ScalePlanOptions();
        ValidateOptions(o);
        ValidateTarget(target, o);
        var baseSize = o.BaseSize is { } given ? ValidateBase(given, target, o) : ChooseBase(target, o);
        var sizes = StageSizes(baseSize, target, o);
        var stages = BuildStages(sizes, o);
        var final = sizes[^1];
        return new ScalePlan
        {
            Target = target,
            NativeSize = o.NativeSize,
            Granularity = o.Granularity,
            Stages = stages,
            BaseWasGiven = o.BaseSize is not null,
            VaeDecodeUntiledBytes = VaeMemoryEstimate.UntiledDecodeBytes(final.Height, final.Width, o.Batch, o.BytesPerElement),
            VaeDecodeTiledBytes = VaeMemoryEstimate.TiledDecodeBytes(final.Height, final.Width, o.Tiling with { ScaleFactor = o.VaeScaleFactor }, o.Batch, o.BytesPerElement, o.LatentChannels),
        };
    }

    /// <summary>Number of ×≤2 upscales from <paramref name="from"/> to <paramref name="to"/>: ceil(log2(max side ratio)).</summary>
    public static int UpscaleCount(PixelSize from, PixelSize to)
    {
        double ratio = Math.Max((double)to.Width / from.Width, (double)to.Height / from.Height);
        int k = 0;
        while (ratio > 1.0 + 1e-12) { ratio /= 2; k++; }
        return k;
    }

    /// <summary>The automatic base stage for <paramref name="target"/> (see the class remarks).</summary>
    public static PixelSize ChooseBase(PixelSize target, ScalePlanOptions o)
    {
        if (ExactChainBase(target, o) is { } exact) return exact;
        double nativePixels = (double)o.NativeSize * o.NativeSize;
        var candidates = new List<PixelSize>();
        for (int w = o.Granularity; w <= target.Width; w += o.Granularity)
        for (int h = o.Granularity; h <= target.Height; h += o.Granularity)
            candidates.Add(new PixelSize(w, h));
        var inWindow = candidates.Where(c => c.Pixels >= o.MinBaseAreaRatio * nativePixels && c.Pixels <= o.MaxBaseAreaRatio * nativePixels).ToList();
        if (inWindow.Count == 0) inWindow = candidates; // a very thin target: no size in the window; score by area.
        return Best(AspectFiltered(inWindow, target, o), target, nativePixels, c => UpscaleCount(c, target))
            ?? throw new ScalePlanException($"no base size that is a multiple of {o.Granularity} fits inside {target}");
    }

    /// <summary>
    /// Stage sizes from <paramref name="baseSize"/> to <paramref name="target"/> inclusive: k = <see cref="UpscaleCount"/>
    /// upscales, intermediate sizes chosen near the geometric path (log-area interpolation), each ≤ 2× per side.
    /// </summary>
    public static IReadOnlyList<PixelSize> StageSizes(PixelSize baseSize, PixelSize target, ScalePlanOptions o)
    {
        int k = UpscaleCount(baseSize, target);
        var sizes = new List<PixelSize> { baseSize };
        for (int j = 1; j < k; j++)
        {
            var prev = sizes[^1];
            // Reachability: after this stage, k - j doublings must reach the target, so each side ≥ target / 2^(k-j).
            int div = 1 << (k - j);
            int loW = CeilTo(CeilDiv(target.Width, div), o.Granularity), loH = CeilTo(CeilDiv(target.Height, div), o.Granularity);
            int hiW = FloorTo(Math.Min(2 * prev.Width, target.Width), o.Granularity), hiH = FloorTo(Math.Min(2 * prev.Height, target.Height), o.Granularity);
            double idealPixels = baseSize.Pixels * Math.Pow((double)target.Pixels / baseSize.Pixels, (double)j / k);
            var candidates = new List<PixelSize>();
            for (int w = loW; w <= hiW; w += o.Granularity)
            for (int h = loH; h <= hiH; h += o.Granularity)
                candidates.Add(new PixelSize(w, h));
            var pick = Best(AspectFiltered(candidates, target, o), target, idealPixels, _ => 0)
                ?? throw new ScalePlanException($"no stage size between {prev} and {target} is a multiple of {o.Granularity} within 2x per side; give a base size or a target that is a multiple of {o.Granularity}");
            sizes.Add(pick);
        }
        if (k > 0) sizes.Add(target);
        return sizes;
    }

    /// <summary>The largest exact ×2 chain base (target / 2^k) inside the area window, or null.</summary>
    private static PixelSize? ExactChainBase(PixelSize target, ScalePlanOptions o)
    {
        double nativePixels = (double)o.NativeSize * o.NativeSize;
        for (int k = 0; target.Width % (1 << k) == 0 && target.Height % (1 << k) == 0 && k < 16; k++)
        {
            var b = new PixelSize(target.Width >> k, target.Height >> k);
            double ratio = b.Pixels / nativePixels;
            if (ratio < o.MinBaseAreaRatio) return null;
            if (ratio > o.MaxBaseAreaRatio) continue;
            if (k == 0 || (b.Width % o.Granularity == 0 && b.Height % o.Granularity == 0)) return b;
        }
        return null;
    }

    /// <summary>Candidates within MaxAspectError of the target's aspect, or, when none is, the closest ones.</summary>
    private static List<PixelSize> AspectFiltered(List<PixelSize> candidates, PixelSize target, ScalePlanOptions o)
    {
        if (candidates.Count == 0) return candidates;
        var ok = candidates.Where(c => AspectError(c, target) <= Math.Log(1 + o.MaxAspectError)).ToList();
        if (ok.Count > 0) return ok;
        double best = candidates.Min(c => AspectError(c, target));
        return candidates.Where(c => AspectError(c, target) <= best + 1e-12).ToList();
    }

    /// <summary>Lowest (stage count, AspectWeight·|log aspect error| + |log area error|), ties to the larger size.</summary>
    private static PixelSize? Best(List<PixelSize> candidates, PixelSize target, double idealPixels, Func<PixelSize, int> stages)
    {
        if (candidates.Count == 0) return null;
        return candidates
            .OrderBy(stages)
            .ThenBy(c => AspectWeight * AspectError(c, target) + Math.Abs(Math.Log(c.Pixels / idealPixels)))
            .ThenByDescending(c => c.Pixels)
            .First();
    }

    /// <summary>|log(aspect / target aspect)|: symmetric in wide/tall errors.</summary>
    public static double AspectError(PixelSize s, PixelSize target) => Math.Abs(Math.Log(s.Aspect / target.Aspect));

    private static IReadOnlyList<ScaleStage> BuildStages(IReadOnlyList<PixelSize> sizes, ScalePlanOptions o)
    {
        foreach (var idx in o.StageOverrides.Keys)
            if (idx < 0 || idx >= sizes.Count)
                throw new ScalePlanException($"stage override for stage {idx}, but the plan has stages 0..{sizes.Count - 1} ({string.Join(" -> ", sizes)})");
        double nativePixels = (double)o.NativeSize * o.NativeSize;
        var stages = new List<ScaleStage>();
        for (int i = 0; i < sizes.Count; i++)
        {
            var ov = o.StageOverrides.TryGetValue(i, out var s) ? s : new StageSettings();
            if (i == 0 && ov.Strength is double bs && bs != 1.0)
                throw new ScalePlanException($"the base stage starts from noise (strength 1); a strength of {Fmt(bs)} applies only to later stages");
            var prev = i > 0 ? sizes[i - 1] : sizes[0];
            var stage = new ScaleStage(i, sizes[i], o.VaeScaleFactor,
                Steps: ov.Steps ?? o.Steps,
                Strength: i == 0 ? 1.0 : ov.Strength ?? o.Strength,
                GuidanceScale: ov.GuidanceScale ?? o.GuidanceScale,
                ScaleW: (double)sizes[i].Width / prev.Width,
                ScaleH: (double)sizes[i].Height / prev.Height,
                PixelRatio: sizes[i].Pixels / nativePixels,
                AttentionFraction: o.AttentionFraction);
            ValidateStageSettings(stage);
            stages.Add(stage);
        }
        return stages;
    }

    private static void ValidateStageSettings(ScaleStage s)
    {
        if (s.Steps < 1) throw new ScalePlanException($"stage {s.Index}: {s.Steps} steps; at least 1 is needed");
        CheckStrength(s.Strength, $"stage {s.Index}");
        CheckGuidance(s.GuidanceScale, $"stage {s.Index}");
        if (s.DenoisingSteps < 1)
            throw new ScalePlanException($"stage {s.Index}: int({s.Steps} steps x strength {Fmt(s.Strength)}) = 0 denoising steps (diffusers' get_timesteps); raise steps or strength");
    }

    private static void ValidateOptions(ScalePlanOptions o)
    {
        if (o.VaeScaleFactor < 1) throw new ScalePlanException($"VAE scale factor {o.VaeScaleFactor} must be at least 1");
        if (o.NativeSize < 1 || o.NativeSize % o.VaeScaleFactor != 0)
            throw new ScalePlanException($"native size {o.NativeSize} must be a positive multiple of the VAE scale factor {o.VaeScaleFactor}");
        if (o.Granularity < o.VaeScaleFactor || o.Granularity % o.VaeScaleFactor != 0)
            throw new ScalePlanException($"granularity {o.Granularity} must be a positive multiple of the VAE scale factor {o.VaeScaleFactor}");
        if (o.Steps < 1) throw new ScalePlanException($"{o.Steps} steps; at least 1 is needed");
        CheckStrength(o.Strength, "strength");
        CheckGuidance(o.GuidanceScale, "guidance");
        if (!(o.MinBaseAreaRatio > 0 && o.MinBaseAreaRatio <= 1 && o.MaxBaseAreaRatio >= 1))
            throw new ScalePlanException($"base area window [{Fmt(o.MinBaseAreaRatio)}, {Fmt(o.MaxBaseAreaRatio)}] must contain 1 and be positive");
        if (!(o.MaxAspectError >= 0)) throw new ScalePlanException($"aspect tolerance {Fmt(o.MaxAspectError)} must be non-negative");
        if (o.MaxSideFactor < 1) throw new ScalePlanException($"size limit factor {o.MaxSideFactor} must be at least 1");
        if (o.Batch < 1 || o.LatentChannels < 1 || o.BytesPerElement < 1) throw new ScalePlanException("batch, latent channels and bytes per element must be positive");
    }

    private static void ValidateTarget(PixelSize t, ScalePlanOptions o)
    {
        if (t.Width <= 0 || t.Height <= 0) throw new ScalePlanException($"target size {t} must be positive");
        int f = o.VaeScaleFactor;
        if (t.Width % f != 0 || t.Height % f != 0)
            throw new ScalePlanException($"target {t} is not divisible by {f} (the VAE scale factor); nearest: {RoundTo(t.Width, f)}x{RoundTo(t.Height, f)}");
        if (t.Width < o.NativeSize || t.Height < o.NativeSize)
            throw new ScalePlanException($"target {t} is smaller than the model's native {o.NativeSize}x{o.NativeSize} in {(t.Width < o.NativeSize ? "width" : "height")}: the self-cascade only upscales (generate directly at that size, or lower the native size)");
        long maxSide = (long)o.MaxSideFactor * o.NativeSize;
        if (t.Width > maxSide || t.Height > maxSide)
            throw new ScalePlanException($"target {t} exceeds {o.MaxSideFactor}x the native {o.NativeSize} per side ({maxSide} px)");
        if (o.MaxLatentBytes is long budget)
        {
            long bytes = (long)o.Batch * o.LatentChannels * (t.Width / f) * (t.Height / f) * o.BytesPerElement;
            if (bytes > budget)
                throw new ScalePlanException($"target {t}: the final stage needs about {bytes * ScalePlanOptions.ActivationBytesPerLatentByte / (double)(1L << 30):F0} GiB of working memory for the UNet, more than the {budget * ScalePlanOptions.ActivationBytesPerLatentByte / (double)(1L << 30):F0} GiB at hand");
        }
    }

    /// <summary>An explicit base: a granularity multiple inside the target with the target's aspect (or the target itself).</summary>
    private static PixelSize ValidateBase(PixelSize b, PixelSize target, ScalePlanOptions o)
    {
        if (b.Width <= 0 || b.Height <= 0) throw new ScalePlanException($"base size {b} must be positive");
        if (b == target) return b;
        int g = o.Granularity;
        if (b.Width % g != 0 || b.Height % g != 0)
            throw new ScalePlanException($"base size {b} is not a multiple of {g} (VAE factor x UNet downsampling); nearest: {Math.Max(g, RoundTo(b.Width, g))}x{Math.Max(g, RoundTo(b.Height, g))}");
        if (b.Width > target.Width || b.Height > target.Height)
            throw new ScalePlanException($"base size {b} is larger than the target {target} in {(b.Width > target.Width ? "width" : "height")}");
        double err = Math.Exp(AspectError(b, target)) - 1;
        if (err > o.MaxAspectError)
            throw new ScalePlanException($"base size {b} has aspect {Fmt(b.Aspect)}, the target {target} has {Fmt(target.Aspect)} ({err * 100:0.#}% apart, limit {o.MaxAspectError * 100:0.#}%): the stages would stretch the image");
        return b;
    }

    private static void CheckStrength(double s, string what)
    {
        if (!(s > 0 && s <= 1)) throw new ScalePlanException($"{what}: strength {Fmt(s)} is outside (0, 1]");
    }

    private static void CheckGuidance(double g, string what)
    {
        if (!(g >= 0) || double.IsInfinity(g)) throw new ScalePlanException($"{what}: guidance scale {Fmt(g)} must be a finite number >= 0");
    }

    private static string Fmt(double x) => x.ToString("0.###", CultureInfo.InvariantCulture);
    private static int CeilDiv(int a, int b) => (a + b - 1) / b;
    private static int CeilTo(int x, int g) => CeilDiv(x, g) * g;
    private static int FloorTo(int x, int g) => x / g * g;
    private static int RoundTo(int x, int g) => (int)Math.Round((double)x / g, MidpointRounding.AwayFromZero) * g;
}
