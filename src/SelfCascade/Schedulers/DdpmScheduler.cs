using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Schedulers;

/// <summary>diffusers DDPMScheduler (Ho et al. 2020): ancestral sampling with the posterior variance; the noise is
/// drawn from the generator at every step whose timestep is above 0, exactly as diffusers draws it.</summary>
public sealed class DdpmScheduler : NoiseScheduler
{
    public DdpmScheduler(SchedulerConfig config) : base(config) { }

    public override string ClassName => "DDPMScheduler";

    protected override double[] ComputeTimesteps(int n) =>
        ScheduleMath.SpacedTimesteps(Config.TimestepSpacing ?? "leading", Config.NumTrainTimesteps, n, Config.StepsOffset);

    /// <summary>DDPMScheduler.previous_timestep: the next entry of the schedule (first match), -1 after the last.</summary>
    private int PreviousTimestep(int t)
    {
        int index = Array.IndexOf(TimestepValues, (double)t);
        if (index < 0) throw new ArgumentException($"timestep {t} is not in the schedule");
        return index == TimestepValues.Length - 1 ? -1 : (int)TimestepValues[index + 1];
    }

    public override Tensor Step(Tensor modelOutput, double timestep, Tensor sample, Generator? generator = null)
    {
        EnsureTimestepsSet();
        using var scope = NewDisposeScope();
        int t = (int)timestep;
        int prevT = PreviousTimestep(t);
        float aT = AlphasCumprod[t];
        float aPrev = prevT >= 0 ? AlphasCumprod[prevT] : 1f;
        float bT = 1f - aT, bPrev = 1f - aPrev;
        float curAlpha = aT / aPrev;
        float curBeta = 1f - curAlpha;
        var (x0, _) = Prediction.ToSampleAndEpsilon(Config.PredictionType, modelOutput, sample, aT);
        if (Config.ClipSample ?? true) x0 = Clamp(x0, Config.ClipSampleRange);
        // formula (7) of the DDPM paper: mean = c0 * x0 + ct * x_t
        float x0Coeff = MathF.Sqrt(aPrev) * curBeta / bT;
        float sampleCoeff = MathF.Sqrt(curAlpha) * bPrev / bT;
        var prev = Mul(x0, x0Coeff).add(Mul(sample, sampleCoeff));
        if (t > 0)
        {
            var noise = RandnLike(modelOutput, generator);
            // _get_variance: clamp((1 - a_prev) / (1 - a_t) * beta_t, 1e-20)
            float variance = MathF.Max(bPrev / bT * curBeta, 1e-20f);
            float scale = Config.VarianceType switch
            {
                "fixed_small" => MathF.Sqrt(variance),
                "fixed_small_log" => MathF.Exp(0.5f * MathF.Log(variance)),
                "fixed_large" => MathF.Sqrt(curBeta),
                "fixed_large_log" => MathF.Sqrt(MathF.Log(curBeta)),
                var v => throw new NotSupportedException($"variance_type '{v}' is not supported"),
            };
            prev = prev.add(Mul(noise, scale));
        }
        return prev.MoveToOuterDisposeScope();
    }

    public override Tensor AddNoise(Tensor original, Tensor noise, double timestep) =>
        Prediction.AddNoiseAlphaBar(original, noise, AlphasCumprod[(int)timestep]);
}
