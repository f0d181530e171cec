using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Schedulers;

/// <summary>
/// The sigma-based schedulers (Euler, Euler ancestral, LMS, DPM-Solver++, UniPC): a sigma per step plus a final one,
/// and diffusers' step-index logic: the first <c>scale_model_input</c>/<c>step</c> finds the index of its timestep
/// (the second match when the timestep occurs twice, <c>index_for_timestep</c>) unless a begin index was set
/// (img2img), and every step advances it by one.
/// </summary>
public abstract class SigmaScheduler : NoiseScheduler
{
    protected float[] SigmaValues = [];
    /// <summary>The float32 sigma table of the training timesteps, ascending in t, and its float32 log.</summary>
    protected readonly float[] TrainSigmas;
    protected readonly float[] LogTrainSigmas;

    protected SigmaScheduler(SchedulerConfig config) : base(config)
    {
        TrainSigmas = ScheduleMath.SigmasFromAlphasCumprod(AlphasCumprod);
        LogTrainSigmas = ScheduleMath.LogFloat32(TrainSigmas);
    }

    public override IReadOnlyList<float> Sigmas => SigmaValues;

    /// <summary>diffusers <c>step_index</c>: null until the first scale_model_input/step of a run.</summary>
    public int? StepIndex { get; protected set; }
    public int? BeginIndex { get; private set; }

    public override bool SupportsBeginIndex => true;
    public override void SetBeginIndex(int beginIndex)
    {
        if (beginIndex < 0 || beginIndex > TimestepValues.Length) throw new ArgumentOutOfRangeException(nameof(beginIndex));
        BeginIndex = beginIndex;
    }

    /// <summary>
    /// The float32 timesteps of the discrete sigma schedulers' set_timesteps (Euler, Euler ancestral, LMS):
    /// linspace by default, else leading/trailing spacing with steps_offset.
    /// </summary>
    protected double[] DiscreteTimesteps(int n)
    {
        var spacing = Config.TimestepSpacing ?? "linspace";
        return spacing == "linspace"
            ? ScheduleMath.LinspaceTimestepsFloat32(Config.NumTrainTimesteps, n)
            : ScheduleMath.SpacedTimesteps(spacing, Config.NumTrainTimesteps, n, Config.StepsOffset);
    }

    protected override void ResetState()
    {
        StepIndex = null;
        BeginIndex = null;
    }

    /// <summary>What index_for_timestep returns when the timestep is not in the schedule: Euler/LMS fail (IndexError
    /// in diffusers), the multistep solvers use the last index.</summary>
    protected virtual int MissingTimestepIndex(double timestep) =>
        throw new ArgumentException($"{ClassName}: timestep {timestep} is not in the schedule");

    /// <summary>diffusers <c>index_for_timestep</c>.</summary>
    protected int IndexForTimestep(double timestep)
    {
        int first = -1, second = -1;
        for (int i = 0; i < TimestepValues.Length; i++)
        {
            if (TimestepValues[i] != timestep) continue;
            if (first < 0) first = i;
            else { second = i; break; }
        }
        if (first < 0) return MissingTimestepIndex(timestep);
        return second >= 0 ? second : first;
    }

    /// <summary>diffusers <c>_init_step_index</c> when the step index is unset.</summary>
    protected int EnsureStepIndex(double timestep)
    {
        StepIndex ??= BeginIndex ?? IndexForTimestep(timestep);
        return StepIndex.Value;
    }

    /// <summary>The step index add_noise uses: lookup when no begin index, else the current step index or the begin index.</summary>
    protected int AddNoiseIndex(double timestep) =>
        BeginIndex is null ? IndexForTimestep(timestep) : StepIndex ?? BeginIndex.Value;

    /// <summary>init_noise_sigma of Euler/LMS: max sigma for linspace/trailing, sqrt(max^2 + 1) for leading (float32).</summary>
    protected double KarrasStyleInitNoiseSigma()
    {
        float max = SigmaValues.Length == 0 ? TrainSigmas.Max() : SigmaValues.Max();
        var spacing = Config.TimestepSpacing ?? "linspace";
        return spacing is "linspace" or "trailing" ? max : MathF.Sqrt(max * max + 1f);
    }

    /// <summary>Euler/LMS scale_model_input: sample / sqrt(sigma^2 + 1).</summary>
    protected Tensor ScaleBySigma(Tensor sample, double timestep)
    {
        float sigma = SigmaValues[EnsureStepIndex(timestep)];
        return Div(sample, MathF.Sqrt(sigma * sigma + 1f));
    }

    /// <summary>Euler/LMS add_noise: original + noise * sigma.</summary>
    protected Tensor AddNoiseVarianceExploding(Tensor original, Tensor noise, double timestep)
    {
        float sigma = SigmaValues[AddNoiseIndex(timestep)];
        using var n = Mul(noise, sigma);
        return original.add(n);
    }

    /// <summary>DPM-Solver/UniPC <c>_sigma_to_alpha_sigma_t</c>: alpha = 1 / sqrt(sigma^2 + 1), sigma_t = sigma * alpha (float32).</summary>
    protected static (float alpha, float sigma) AlphaSigma(float sigma)
    {
        float alpha = 1f / MathF.Sqrt(sigma * sigma + 1f);
        return (alpha, sigma * alpha);
    }

    /// <summary>lambda = log(alpha) - log(sigma) (float32; +inf at sigma 0).</summary>
    protected static double Lambda(float alpha, float sigma) => (double)MathF.Log(alpha) - MathF.Log(sigma);

    /// <summary>DPM-Solver/UniPC add_noise: alpha_t * original + sigma_t * noise.</summary>
    protected Tensor AddNoiseVariancePreserving(Tensor original, Tensor noise, double timestep)
    {
        var (a, s) = AlphaSigma(SigmaValues[AddNoiseIndex(timestep)]);
        return Combine(a, original, s, noise);
    }

    /// <summary>The x0 prediction of the sigma (variance exploding) parametrisation: epsilon: x - sigma * eps;
    /// v_prediction: v * (-sigma / sqrt(sigma^2 + 1)) + x / (sigma^2 + 1); sample: the output.</summary>
    protected Tensor PredictOriginalVe(Tensor modelOutput, Tensor sample, float sigma) => Config.PredictionType switch
    {
        "epsilon" => sample.sub(Mul(modelOutput, sigma)),
        "v_prediction" => Mul(modelOutput, -sigma / MathF.Sqrt(sigma * sigma + 1f)).add(Div(sample, sigma * sigma + 1f)),
        "sample" => modelOutput.alias(),
        var p => throw new ArgumentException($"prediction_type '{p}' is not supported"),
    };
}
