using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Schedulers;

/// <summary>diffusers LMSDiscreteScheduler: linear multistep over the last (up to) four derivatives, the coefficients
/// being integrals of Lagrange basis polynomials over [sigma_i, sigma_{i+1}] (scipy.integrate.quad in diffusers).</summary>
public sealed class LmsDiscreteScheduler : SigmaScheduler
{
    private const int LmsOrder = 4;
    private readonly List<Tensor> _derivatives = [];

    public LmsDiscreteScheduler(SchedulerConfig config) : base(config) { }

    public override string ClassName => "LMSDiscreteScheduler";
    public override ScalarType TimestepDType => ScalarType.Float32;
    public override double InitNoiseSigma => KarrasStyleInitNoiseSigma();

    protected override double[] ComputeTimesteps(int n)
    {
        double[] timesteps = DiscreteTimesteps(n);
        double[] sigmas = timesteps.Select(t => ScheduleMath.Interp(t, TrainSigmas)).ToArray();
        if (Config.UseKarrasSigmas)
        {
            sigmas = ScheduleMath.KarrasSigmas(sigmas[^1], sigmas[0], n);
            timesteps = sigmas.Select(s => (double)(float)ScheduleMath.SigmaToT(s, LogTrainSigmas)).ToArray();
        }
        SigmaValues = sigmas.Append(0.0).Select(s => (float)s).ToArray();
        return timesteps;
    }

    protected override void ResetState()
    {
        base.ResetState();
        foreach (var d in _derivatives) d.Dispose();
        _derivatives.Clear();
    }

    public override Tensor ScaleModelInput(Tensor sample, double timestep) => ScaleBySigma(sample, timestep);

    /// <summary>LMSDiscreteScheduler.get_lms_coefficient: the integral over [sigma_t, sigma_{t+1}] of the Lagrange basis
    /// polynomial of node t - currentOrder through the nodes sigma_t .. sigma_{t-order+1}.</summary>
    public double LmsCoefficient(int order, int t, int currentOrder)
    {
        double Basis(double tau)
        {
            double prod = 1.0;
            for (int k = 0; k < order; k++)
            {
                if (k == currentOrder) continue;
                prod *= (tau - SigmaValues[t - k]) / ((double)SigmaValues[t - currentOrder] - SigmaValues[t - k]);
            }
            return prod;
        }
        return ScheduleMath.IntegratePolynomial(Basis, SigmaValues[t], SigmaValues[t + 1]);
    }

    public override Tensor Step(Tensor modelOutput, double timestep, Tensor sample, Generator? generator = null)
    {
        EnsureTimestepsSet();
        int i = EnsureStepIndex(timestep);
        using var scope = NewDisposeScope();
        float sigma = SigmaValues[i];
        var x0 = PredictOriginalVe(modelOutput, sample, sigma);
        var derivative = Div(sample.sub(x0), sigma);
        _derivatives.Add(derivative.alias().DetachFromDisposeScope());
        if (_derivatives.Count > LmsOrder) { _derivatives[0].Dispose(); _derivatives.RemoveAt(0); }
        int order = Math.Min(i + 1, LmsOrder);
        // prev = sample + sum(coeff_k * derivatives[-1 - k]), the sum accumulated first as Python's sum() does; zip()
        // stops at the shorter list, so a run that starts part-way (img2img) uses as many terms as it has derivatives.
        Tensor sum = Mul(_derivatives[^1], LmsCoefficient(order, i, 0));
        for (int k = 1; k < Math.Min(order, _derivatives.Count); k++)
            sum = sum.add(Mul(_derivatives[_derivatives.Count - 1 - k], LmsCoefficient(order, i, k)));
        var prev = sample.add(sum);
        StepIndex = i + 1;
        return prev.MoveToOuterDisposeScope();
    }

    public override Tensor AddNoise(Tensor original, Tensor noise, double timestep) =>
        AddNoiseVarianceExploding(original, noise, timestep);
}
