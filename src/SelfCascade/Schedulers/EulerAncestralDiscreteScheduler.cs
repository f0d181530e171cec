using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Schedulers;

/// <summary>diffusers EulerAncestralDiscreteScheduler: an Euler step to sigma_down plus fresh noise of size sigma_up,
/// drawn from the generator at every step (the last included).</summary>
public sealed class EulerAncestralDiscreteScheduler : SigmaScheduler
{
    public EulerAncestralDiscreteScheduler(SchedulerConfig config) : base(config) { }

    public override string ClassName => "EulerAncestralDiscreteScheduler";
    public override ScalarType TimestepDType => ScalarType.Float32;
    public override double InitNoiseSigma => KarrasStyleInitNoiseSigma();

    protected override double[] ComputeTimesteps(int n)
    {
        double[] timesteps = DiscreteTimesteps(n);
        SigmaValues = timesteps.Select(t => (float)ScheduleMath.Interp(t, TrainSigmas)).Append(0f).ToArray();
        return timesteps;
    }

    public override Tensor ScaleModelInput(Tensor sample, double timestep) => ScaleBySigma(sample, timestep);

    public override Tensor Step(Tensor modelOutput, double timestep, Tensor sample, Generator? generator = null)
    {
        EnsureTimestepsSet();
        int i = EnsureStepIndex(timestep);
        using var scope = NewDisposeScope();
        float sigma = SigmaValues[i];
        var x = sample.to_type(ScalarType.Float32);
        var x0 = PredictOriginalVe(modelOutput, x, sigma);
        float from = SigmaValues[i], to = SigmaValues[i + 1];
        float up = MathF.Sqrt(to * to * (from * from - to * to) / (from * from));
        float down = MathF.Sqrt(to * to - up * up);
        var derivative = Div(x.sub(x0), sigma);
        var prev = x.add(Mul(derivative, down - sigma));
        var noise = RandnLike(modelOutput, generator);
        prev = prev.add(Mul(noise, up)).to_type(modelOutput.dtype);
        StepIndex = i + 1;
        return prev.MoveToOuterDisposeScope();
    }

    public override Tensor AddNoise(Tensor original, Tensor noise, double timestep) =>
        AddNoiseVarianceExploding(original, noise, timestep);
}
