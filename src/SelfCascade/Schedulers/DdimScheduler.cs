using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Schedulers;

/// <summary>diffusers DDIMScheduler (Song et al. 2020), eta = 0 by default (deterministic).</summary>
public sealed class DdimScheduler : NoiseScheduler
{
    private readonly float _finalAlphaCumprod;

    public DdimScheduler(SchedulerConfig config) : base(config)
    {
        // final_alpha_cumprod = 1.0 if set_alpha_to_one (the class default) else alphas_cumprod[0]
        _finalAlphaCumprod = config.SetAlphaToOne ?? true ? 1f : AlphasCumprod[0];
    }

    public override string ClassName => "DDIMScheduler";

    /// <summary>DDIM's eta (0 = DDIM, 1 = DDPM-like); eta &gt; 0 draws noise from the generator passed to Step.</summary>
    public double Eta { get; set; }

    private int StepRatio => Config.NumTrainTimesteps / NumInferenceSteps;

    protected override double[] ComputeTimesteps(int n) =>
        ScheduleMath.SpacedTimesteps(Config.TimestepSpacing ?? "leading", Config.NumTrainTimesteps, n, Config.StepsOffset);

    public override Tensor Step(Tensor modelOutput, double timestep, Tensor sample, Generator? generator = null)
    {
        EnsureTimestepsSet();
        using var scope = NewDisposeScope();
        int t = (int)timestep;
        int prev = t - StepRatio;
        float aT = AlphasCumprod[t];
        float aPrev = prev >= 0 ? AlphasCumprod[prev] : _finalAlphaCumprod;
        float bT = 1f - aT;
        var (x0, eps) = Prediction.ToSampleAndEpsilon(Config.PredictionType, modelOutput, sample, aT);
        if (Config.ClipSample ?? true) x0 = Clamp(x0, Config.ClipSampleRange);
        // _get_variance: (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev); std = eta * sqrt(variance)
        float variance = (1f - aPrev) / bT * (1f - aT / aPrev);
        float std = (float)Eta * MathF.Sqrt(variance);
        // use_clipped_model_output is off (pipelines' default), so eps stays the unclipped prediction.
        var direction = Mul(eps, MathF.Sqrt(1f - aPrev - std * std));
        var prevSample = Mul(x0, MathF.Sqrt(aPrev)).add(direction);
        if (Eta > 0)
        {
            var noise = RandnLike(modelOutput, generator);
            prevSample = prevSample.add(Mul(noise, std));
        }
        return prevSample.MoveToOuterDisposeScope();
    }

    public override Tensor AddNoise(Tensor original, Tensor noise, double timestep) =>
        Prediction.AddNoiseAlphaBar(original, noise, AlphasCumprod[(int)timestep]);
}
