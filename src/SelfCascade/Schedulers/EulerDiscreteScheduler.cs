using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Schedulers;

/// <summary>diffusers EulerDiscreteScheduler (Karras et al. 2022, Algorithm 2 with s_churn = 0): deterministic Euler.</summary>
public class EulerDiscreteScheduler : SigmaScheduler
{
    public EulerDiscreteScheduler(SchedulerConfig config) : base(config) { }

    public override string ClassName => "EulerDiscreteScheduler";
    public override ScalarType TimestepDType => ScalarType.Float32;
    public override double InitNoiseSigma => KarrasStyleInitNoiseSigma();

    protected override double[] ComputeTimesteps(int n)
    {
        // EulerDiscreteScheduler.set_timesteps: float32 timesteps; sigmas interpolated in float64 from the float32 table.
        double[] timesteps = DiscreteTimesteps(n);
        double[] sigmas;
        if (Config.InterpolationType == "log_linear")
        {
            // torch.linspace(log(sigmas[-1]), log(sigmas[0]), n + 1).exp(): float32 torch
            using var scope = NewDisposeScope();
            var lin = linspace(Math.Log(TrainSigmas[^1]), Math.Log(TrainSigmas[0]), n + 1, dtype: ScalarType.Float32).exp();
            sigmas = lin.data<float>().ToArray().Select(v => (double)v).ToArray();
        }
        else
            sigmas = timesteps.Select(t => ScheduleMath.Interp(t, TrainSigmas)).ToArray();
        if (Config.UseKarrasSigmas)
        {
            sigmas = ScheduleMath.KarrasSigmas(Config.SigmaMin ?? sigmas[^1], Config.SigmaMax ?? sigmas[0], n);
            timesteps = sigmas.Select(s => (double)(float)ScheduleMath.SigmaToT(s, LogTrainSigmas)).ToArray();
        }
        double last = Config.FinalSigmasType == "sigma_min" ? MathF.Sqrt((1f - AlphasCumprod[0]) / AlphasCumprod[0]) : 0;
        SigmaValues = sigmas.Append(last).Select(s => (float)s).ToArray();
        return timesteps.Select(t => (double)(float)t).ToArray();
    }

    public override Tensor ScaleModelInput(Tensor sample, double timestep) => ScaleBySigma(sample, timestep);

    public override Tensor Step(Tensor modelOutput, double timestep, Tensor sample, Generator? generator = null)
    {
        EnsureTimestepsSet();
        int i = EnsureStepIndex(timestep);
        using var scope = NewDisposeScope();
        var x = sample.to_type(ScalarType.Float32);
        float sigma = SigmaValues[i];
        // s_churn = 0: gamma = 0, sigma_hat = sigma, no noise.
        var x0 = PredictOriginalVe(modelOutput, x, sigma);
        var derivative = Div(x.sub(x0), sigma);
        float dt = SigmaValues[i + 1] - sigma;
        var prev = x.add(Mul(derivative, dt)).to_type(modelOutput.dtype);
        StepIndex = i + 1;
        return prev.MoveToOuterDisposeScope();
    }

    public override Tensor AddNoise(Tensor original, Tensor noise, double timestep) =>
        AddNoiseVarianceExploding(original, noise, timestep);
}
