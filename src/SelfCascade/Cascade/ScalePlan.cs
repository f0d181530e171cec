using System.Globalization;
using System.Text;

namespace SelfCascade.Cascade;

/// <summary>
/// One stage of the cascade. Stage 0 is text-to-image from noise; stage r ≥ 1 upsamples stage r-1's clean latent to
/// this size, re-noises it to the strength's first timestep and denoises <see cref="DenoisingSteps"/> steps (paper §3.1).
/// </summary>
public sealed record ScaleStage(
    int Index,
    PixelSize Size,
    int VaeScaleFactor,
    int Steps,
    double Strength,
    double GuidanceScale,
    double ScaleW,
    double ScaleH,
    double PixelRatio,
    double AttentionFraction)
{
    public int Width => Size.Width;
    public int Height => Size.Height;
    public int LatentWidth => Width / VaeScaleFactor;
    public int LatentHeight => Height / VaeScaleFactor;
    public bool IsBase => Index == 0;

    /// <summary>UNet steps this stage runs: all for the base, <see cref="CascadeMath.Img2ImgSteps"/> for later stages.</summary>
    public int DenoisingSteps => IsBase ? Steps : CascadeMath.Img2ImgSteps(Steps, Strength);

    /// <summary>First timestep index of the schedule (0 for the base; get_timesteps' t_start otherwise).</summary>
    public int StartIndex => IsBase ? 0 : CascadeMath.Img2ImgStartIndex(Steps, Strength);

    /// <summary>UNet batch per step per image: 2 with classifier-free guidance.</summary>
    public int CfgBatch => CascadeMath.CfgBatchMultiplier(GuidanceScale);

    /// <summary>Pixel-linear cost in native-step equivalents: steps × pixels / native pixels.</summary>
    public double NativeStepCost => DenoisingSteps * PixelRatio;

    /// <summary>Attention-aware cost in native-step equivalents: steps × ((1-a) r + a r²).</summary>
    public double AttentionAwareCost => DenoisingSteps * CascadeMath.StepCost(PixelRatio, AttentionFraction);
}

/// <summary>The stages from the base size to the target, with cost and memory estimates. Made by <see cref="ScalePlanner"/>.</summary>
public sealed class ScalePlan
{
    public required PixelSize Target { get; init; }
    public required int NativeSize { get; init; }
    public required int Granularity { get; init; }
    public required IReadOnlyList<ScaleStage> Stages { get; init; }
    /// <summary>Estimated peak bytes of decoding the final image untiled and tiled (<see cref="VaeMemoryEstimate"/>).</summary>
    public required long VaeDecodeUntiledBytes { get; init; }
    public required long VaeDecodeTiledBytes { get; init; }
    public required bool BaseWasGiven { get; init; }

    public ScaleStage Base => Stages[0];
    public ScaleStage Final => Stages[^1];

    /// <summary>
    /// True when the target is a multiple of the VAE factor but not of the granularity: the last stage's UNet then runs
    /// on a latent its downsamplers do not divide, which diffusers' UNet2DConditionModel handles by passing explicit
    /// upsample sizes (<c>forward_upsample_size</c>); diffusers' own pipelines accept such sizes the same way.
    /// </summary>
    public bool FinalNeedsUpsampleSizes => Target.Width % Granularity != 0 || Target.Height % Granularity != 0;

    public int TotalDenoisingSteps => Stages.Sum(s => s.DenoisingSteps);
    public double TotalNativeStepCost => Stages.Sum(s => s.NativeStepCost);
    public double TotalAttentionAwareCost => Stages.Sum(s => s.AttentionAwareCost);

    /// <summary>A plain-text table for <c>selfcascade plan</c>.</summary>
    public string Describe()
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(ci, $"Self-cascade plan: {Target} from native {NativeSize}x{NativeSize} (granularity {Granularity} px), {Stages.Count} stage(s)");
        sb.AppendLine(BaseWasGiven ? ", base size given" : "");
        string[] head = ["stage", "size", "latent", "x/side", "aspect", "steps", "strength", "UNet steps", "CFG", "guidance", "cost", "attn-aware"];
        var rows = new List<string[]> { head };
        foreach (var s in Stages)
            rows.Add([
                s.Index.ToString(ci),
                s.Size.ToString(),
                $"{s.LatentWidth}x{s.LatentHeight}",
                s.IsBase ? "-" : (Math.Abs(s.ScaleW - s.ScaleH) < 5e-3 ? s.ScaleW.ToString("0.00", ci) : $"{s.ScaleW.ToString("0.00", ci)}/{s.ScaleH.ToString("0.00", ci)}"),
                s.Size.Aspect.ToString("0.000", ci),
                s.Steps.ToString(ci),
                s.IsBase ? "1.00" : s.Strength.ToString("0.00", ci),
                s.IsBase ? s.DenoisingSteps.ToString(ci) : $"{s.DenoisingSteps} (from #{s.StartIndex})",
                $"x{s.CfgBatch}",
                s.GuidanceScale.ToString("0.0##", ci),
                s.NativeStepCost.ToString("0.0", ci),
                s.AttentionAwareCost.ToString("0.0", ci),
            ]);
        var widths = Enumerable.Range(0, head.Length).Select(c => rows.Max(r => r[c].Length)).ToArray();
        foreach (var r in rows)
            sb.AppendLine(string.Join("  ", r.Select((cell, c) => c <= 2 ? cell.PadRight(widths[c]) : cell.PadLeft(widths[c]))).TrimEnd());
        sb.AppendLine(ci, $"total: {TotalDenoisingSteps} UNet steps, {TotalNativeStepCost:0.0} native-step equivalents (pixel-linear), {TotalAttentionAwareCost:0.0} attention-aware (share {Base.AttentionFraction:0.00} at native)");
        sb.AppendLine(ci, $"target aspect {Target.Aspect:0.000}; largest stage aspect error {Stages.Max(s => Math.Abs(s.Size.Aspect / Target.Aspect - 1)) * 100:0.0}%");
        if (FinalNeedsUpsampleSizes)
            sb.AppendLine(ci, $"note: {Target} is not a multiple of {Granularity}; the last stage's UNet uses explicit upsample sizes (as diffusers does)");
        sb.AppendLine(ci, $"VAE decode of {Target}: ~{Gib(VaeDecodeUntiledBytes)} untiled, ~{Gib(VaeDecodeTiledBytes)} tiled");
        return sb.ToString();
    }

    private static string Gib(long bytes) => (bytes / (double)(1L << 30)).ToString("0.00", CultureInfo.InvariantCulture) + " GiB";
}
