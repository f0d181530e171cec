using System.Text.Json;
using SelfCascade.IO;

namespace SelfCascade.Schedulers;

/// <summary>
/// A diffusers <c>scheduler_config.json</c>, typed. Keys a scheduler class defaults differently in diffusers
/// (<c>timestep_spacing</c>, <c>clip_sample</c>, <c>set_alpha_to_one</c>, <c>solver_type</c>) are nullable here:
/// null means "the class default", which each scheduler applies. Unknown keys are ignored; impossible or
/// unsupported values are reported all at once as a <see cref="ConfigException"/>.
/// </summary>
public sealed record SchedulerConfig
{
    public string ClassName { get; init; } = "";
    public int NumTrainTimesteps { get; init; } = 1000;
    public double BetaStart { get; init; } = 0.0001;
    public double BetaEnd { get; init; } = 0.02;
    /// <summary>linear, scaled_linear or squaredcos_cap_v2.</summary>
    public string BetaSchedule { get; init; } = "linear";
    public double[]? TrainedBetas { get; init; }
    public bool RescaleBetasZeroSnr { get; init; }
    /// <summary>epsilon, v_prediction or sample.</summary>
    public string PredictionType { get; init; } = "epsilon";
    /// <summary>leading, trailing or linspace; null = the class default (DDIM/PNDM/DDPM leading, the others linspace).</summary>
    public string? TimestepSpacing { get; init; }
    public int StepsOffset { get; init; }
    /// <summary>DDIM/DDPM: null = class default (true).</summary>
    public bool? ClipSample { get; init; }
    public double ClipSampleRange { get; init; } = 1.0;
    /// <summary>DDIM default true, PNDM default false.</summary>
    public bool? SetAlphaToOne { get; init; }
    public bool SkipPrkSteps { get; init; }
    public bool UseKarrasSigmas { get; init; }
    public double? SigmaMin { get; init; }
    public double? SigmaMax { get; init; }
    /// <summary>Euler: linear or log_linear.</summary>
    public string InterpolationType { get; init; } = "linear";
    /// <summary>DPM-Solver: dpmsolver++, dpmsolver or sde-dpmsolver++.</summary>
    public string AlgorithmType { get; init; } = "dpmsolver++";
    public int SolverOrder { get; init; } = 2;
    /// <summary>DPM-Solver midpoint/heun (default midpoint), UniPC bh1/bh2 (default bh2); null = class default.</summary>
    public string? SolverType { get; init; }
    public bool LowerOrderFinal { get; init; } = true;
    public bool EulerAtFinal { get; init; }
    /// <summary>zero or sigma_min.</summary>
    public string FinalSigmasType { get; init; } = "zero";
    public double LambdaMinClipped { get; init; } = double.NegativeInfinity;
    public bool PredictX0 { get; init; } = true;
    public int[] DisableCorrector { get; init; } = [];
    /// <summary>DDPM: fixed_small, fixed_small_log, fixed_large or fixed_large_log.</summary>
    public string VarianceType { get; init; } = "fixed_small";

    private static readonly string[] BetaSchedules = ["linear", "scaled_linear", "squaredcos_cap_v2"];
    private static readonly string[] PredictionTypes = ["epsilon", "v_prediction", "sample"];
    private static readonly string[] Spacings = ["leading", "trailing", "linspace"];
    private static readonly string[] Algorithms = ["dpmsolver++", "dpmsolver", "sde-dpmsolver++"];
    private static readonly string[] SolverTypes = ["midpoint", "heun", "bh1", "bh2"];
    private static readonly string[] FinalSigmas = ["zero", "sigma_min"];
    private static readonly string[] Interpolations = ["linear", "log_linear"];
    private static readonly string[] Variances = ["fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log"];

    /// <summary>The config SD 1.x/2.x/SDXL ship (scaled_linear 0.00085..0.012, 1000 steps, steps_offset 1), for a class.</summary>
    public static SchedulerConfig StableDiffusion(string className = "DDIMScheduler") => new()
    {
        ClassName = className, BetaStart = 0.00085, BetaEnd = 0.012, BetaSchedule = "scaled_linear",
        StepsOffset = 1, ClipSample = false, SetAlphaToOne = false, SkipPrkSteps = true,
    };

    public static SchedulerConfig Load(string path)
    {
        var cfg = ConfigJson.Load(path);
        return FromJson(cfg);
    }

    public static SchedulerConfig FromJson(ConfigJson c)
    {
        var result = new SchedulerConfig
        {
            ClassName = c.String("_class_name", ""),
            NumTrainTimesteps = c.Int("num_train_timesteps", 1000, min: 1),
            BetaStart = c.Double("beta_start", 0.0001, min: 0, max: 1),
            BetaEnd = c.Double("beta_end", 0.02, min: 0, max: 1),
            BetaSchedule = c.String("beta_schedule", "linear", BetaSchedules),
            TrainedBetas = ReadDoubles(c, "trained_betas"),
            RescaleBetasZeroSnr = c.Bool("rescale_betas_zero_snr", false),
            PredictionType = c.String("prediction_type", "epsilon", PredictionTypes),
            TimestepSpacing = c.Has("timestep_spacing") ? c.String("timestep_spacing", "leading", Spacings) : null,
            StepsOffset = c.Int("steps_offset", 0, min: 0),
            ClipSample = c.Has("clip_sample") ? c.Bool("clip_sample", true) : null,
            ClipSampleRange = c.Double("clip_sample_range", 1.0, min: 0),
            SetAlphaToOne = c.Has("set_alpha_to_one") ? c.Bool("set_alpha_to_one", true) : null,
            SkipPrkSteps = c.Bool("skip_prk_steps", false),
            UseKarrasSigmas = c.Bool("use_karras_sigmas", false),
            SigmaMin = c.OptionalDouble("sigma_min"),
            SigmaMax = c.OptionalDouble("sigma_max"),
            InterpolationType = c.String("interpolation_type", "linear", Interpolations),
            AlgorithmType = c.String("algorithm_type", "dpmsolver++"),
            SolverOrder = c.Int("solver_order", 2, min: 1, max: 3),
            SolverType = c.Has("solver_type") ? c.String("solver_type", "midpoint", SolverTypes) : null,
            LowerOrderFinal = c.Bool("lower_order_final", true),
            EulerAtFinal = c.Bool("euler_at_final", false),
            FinalSigmasType = c.String("final_sigmas_type", "zero", FinalSigmas),
            LambdaMinClipped = ReadLambdaMin(c),
            PredictX0 = c.Bool("predict_x0", true),
            DisableCorrector = c.IntList("disable_corrector", [], min: 0),
            VarianceType = c.String("variance_type", "fixed_small"),
        };
        // Options diffusers has but these schedulers do not implement: refuse rather than silently differ.
        foreach (var key in new[] { "thresholding", "use_exponential_sigmas", "use_beta_sigmas", "use_lu_lambdas", "use_flow_sigmas", "use_dynamic_shifting" })
            if (c.Has(key) && c.Root.GetProperty(key).ValueKind == JsonValueKind.True) c.Problem($"'{key}' = true is not supported");
        if (c.Has("timestep_type") && c.OptionalString("timestep_type") is string tt && tt != "discrete")
            c.Problem($"'timestep_type' = '{tt}' is not supported (only discrete)");
        foreach (var p in result.Validate()) c.Problem(p);
        c.ThrowIfInvalid();
        return result;
    }

    /// <summary>Problems of this config (empty when valid); <see cref="ThrowIfInvalid"/> raises them.</summary>
    public IReadOnlyList<string> Validate()
    {
        var p = new List<string>();
        if (NumTrainTimesteps < 1) p.Add($"'num_train_timesteps' = {NumTrainTimesteps} must be at least 1");
        if (TrainedBetas is null)
        {
            if (!BetaSchedules.Contains(BetaSchedule)) p.Add($"'beta_schedule' = '{BetaSchedule}' is not one of {string.Join(", ", BetaSchedules)}");
            if (BetaSchedule != "squaredcos_cap_v2" && !(BetaStart > 0 && BetaEnd < 1 && BetaStart <= BetaEnd))
                p.Add($"'beta_start'/'beta_end' = {BetaStart}/{BetaEnd} must satisfy 0 < beta_start <= beta_end < 1");
        }
        else
        {
            if (TrainedBetas.Length != NumTrainTimesteps) p.Add($"'trained_betas' has {TrainedBetas.Length} entries, expected num_train_timesteps = {NumTrainTimesteps}");
            if (TrainedBetas.Any(b => !(b > 0 && b < 1))) p.Add("'trained_betas' entries must lie in (0, 1)");
        }
        if (!PredictionTypes.Contains(PredictionType)) p.Add($"'prediction_type' = '{PredictionType}' is not one of {string.Join(", ", PredictionTypes)}");
        if (TimestepSpacing != null && !Spacings.Contains(TimestepSpacing)) p.Add($"'timestep_spacing' = '{TimestepSpacing}' is not one of {string.Join(", ", Spacings)}");
        if (StepsOffset < 0 || StepsOffset >= NumTrainTimesteps) p.Add($"'steps_offset' = {StepsOffset} must lie in [0, num_train_timesteps)");
        if (!Algorithms.Contains(AlgorithmType)) p.Add($"'algorithm_type' = '{AlgorithmType}' is not one of {string.Join(", ", Algorithms)}");
        if (SolverOrder is < 1 or > 3) p.Add($"'solver_order' = {SolverOrder} must be 1, 2 or 3");
        if (SolverType != null && !SolverTypes.Contains(SolverType)) p.Add($"'solver_type' = '{SolverType}' is not one of {string.Join(", ", SolverTypes)}");
        if (!FinalSigmas.Contains(FinalSigmasType)) p.Add($"'final_sigmas_type' = '{FinalSigmasType}' is not one of {string.Join(", ", FinalSigmas)}");
        if (!Interpolations.Contains(InterpolationType)) p.Add($"'interpolation_type' = '{InterpolationType}' is not one of {string.Join(", ", Interpolations)}");
        if (!Variances.Contains(VarianceType)) p.Add($"'variance_type' = '{VarianceType}' is not supported (one of {string.Join(", ", Variances)})");
        if (SigmaMin is double smin && SigmaMax is double smax && !(smin > 0 && smin < smax)) p.Add($"'sigma_min'/'sigma_max' = {smin}/{smax} must satisfy 0 < sigma_min < sigma_max");
        // diffusers DPMSolverMultistepScheduler.__init__ refuses final_sigmas_type 'zero' for the non-++ solver.
        if (ClassName == "DPMSolverMultistepScheduler" && AlgorithmType == "dpmsolver" && FinalSigmasType == "zero")
            p.Add("algorithm_type 'dpmsolver' needs final_sigmas_type 'sigma_min'");
        if (ClassName == "DPMSolverMultistepScheduler" && AlgorithmType == "sde-dpmsolver++" && SolverOrder == 3)
            p.Add("algorithm_type 'sde-dpmsolver++' with solver_order 3 is not supported");
        return p;
    }

    public void ThrowIfInvalid()
    {
        var p = Validate();
        if (p.Count > 0) throw new ConfigException($"scheduler config: {p.Count} problem(s): " + string.Join("; ", p));
    }

    private static double[]? ReadDoubles(ConfigJson c, string key)
    {
        if (!c.Has(key)) return null;
        var v = c.Root.GetProperty(key);
        if (v.ValueKind != JsonValueKind.Array) { c.Problem($"'{key}' must be a list of numbers or null"); return null; }
        var list = new List<double>();
        foreach (var e in v.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number) { c.Problem($"'{key}' has a non-number entry {e.GetRawText()}"); continue; }
            list.Add(e.GetDouble());
        }
        return list.ToArray();
    }

    // JSON has no -inf: diffusers writes it as -Infinity (Python json), which System.Text.Json cannot parse as a
    // number, so a missing or unreadable value means the default -inf (no clipping).
    private static double ReadLambdaMin(ConfigJson c) =>
        c.OptionalDouble("lambda_min_clipped") ?? double.NegativeInfinity;
}
