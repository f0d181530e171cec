using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Schedulers;

/// <summary>
/// diffusers DPMSolverMultistepScheduler (Lu et al. 2022, DPM-Solver++): algorithm_type dpmsolver++ (default),
/// dpmsolver or sde-dpmsolver++, solver_order 1..3, midpoint/heun, optional Karras sigmas. The first step is first
/// order (no history), the last step is first order when final_sigmas_type is zero (or lower_order_final with
/// fewer than 15 steps), and the second to last is at most second order under lower_order_final with &lt; 15 steps.
/// </summary>
public sealed class DpmSolverMultistepScheduler : SigmaScheduler
{
    private readonly Tensor?[] _modelOutputs;
    private int _lowerOrderNums;

    public DpmSolverMultistepScheduler(SchedulerConfig config) : base(config)
    {
        _modelOutputs = new Tensor?[config.SolverOrder];
    }

    public override string ClassName => "DPMSolverMultistepScheduler";

    private string SolverType => Config.SolverType is "heun" ? "heun" : "midpoint"; // bh1/bh2/logrho map to midpoint in diffusers

    protected override int MissingTimestepIndex(double timestep) => TimestepValues.Length - 1;

    protected override double[] ComputeTimesteps(int n)
    {
        // clipped_idx = searchsorted(flip(lambda_t), lambda_min_clipped); last_timestep = T - clipped_idx
        int clipped = 0;
        for (int t = AlphasCumprod.Length - 1; t >= 0; t--)
        {
            float a = MathF.Sqrt(AlphasCumprod[t]), s = MathF.Sqrt(1f - AlphasCumprod[t]);
            if (MathF.Log(a) - MathF.Log(s) < Config.LambdaMinClipped) clipped++; else break;
        }
        int lastTimestep = Config.NumTrainTimesteps - clipped;
        double[] timesteps = ScheduleMath.MultistepTimesteps(Config.TimestepSpacing ?? "linspace", Config.NumTrainTimesteps, lastTimestep, n, Config.StepsOffset);
        double[] sigmas;
        if (Config.UseKarrasSigmas)
        {
            // np.flip(sigmas) then _convert_to_karras: sigma_min = smallest training sigma, sigma_max = largest
            sigmas = ScheduleMath.KarrasSigmas(Config.SigmaMin ?? TrainSigmas[0], Config.SigmaMax ?? TrainSigmas[^1], n);
            var ts = sigmas.Select(s => ScheduleMath.SigmaToT(s, LogTrainSigmas));
            timesteps = (Config.BetaSchedule != "squaredcos_cap_v2" ? ts.Select(ScheduleMath.RoundHalfEven) : ts.Select(Math.Truncate)).ToArray();
        }
        else
            sigmas = timesteps.Select(t => ScheduleMath.Interp(t, TrainSigmas)).ToArray();
        double last = Config.FinalSigmasType == "sigma_min" ? MathF.Sqrt((1f - AlphasCumprod[0]) / AlphasCumprod[0]) : 0;
        SigmaValues = sigmas.Append(last).Select(s => (float)s).ToArray();
        return timesteps;
    }

    protected override void ResetState()
    {
        base.ResetState();
        for (int i = 0; i < _modelOutputs.Length; i++) { _modelOutputs[i]?.Dispose(); _modelOutputs[i] = null; }
        _lowerOrderNums = 0;
    }

    /// <summary>convert_model_output: the data prediction x0 (dpmsolver++) or the noise prediction (dpmsolver).</summary>
    private Tensor ConvertModelOutput(Tensor modelOutput, Tensor sample, int i)
    {
        var (alpha, sigma) = AlphaSigma(SigmaValues[i]);
        bool dataPrediction = Config.AlgorithmType is "dpmsolver++" or "sde-dpmsolver++";
        return (dataPrediction, Config.PredictionType) switch
        {
            (true, "epsilon") => Div(sample.sub(Mul(modelOutput, sigma)), alpha),
            (true, "sample") => modelOutput.alias(),
            (true, "v_prediction") => Mul(sample, alpha).sub(Mul(modelOutput, sigma)),
            (false, "epsilon") => modelOutput.alias(),
            (false, "sample") => Div(sample.sub(Mul(modelOutput, alpha)), sigma),
            (false, "v_prediction") => Mul(modelOutput, alpha).add(Mul(sample, sigma)),
            _ => throw new ArgumentException($"prediction_type '{Config.PredictionType}' is not supported"),
        };
    }

    public override Tensor Step(Tensor modelOutput, double timestep, Tensor sample, Generator? generator = null)
    {
        EnsureTimestepsSet();
        int i = EnsureStepIndex(timestep);
        int len = TimestepValues.Length;
        bool lowerOrderFinal = i == len - 1 && (Config.EulerAtFinal || (Config.LowerOrderFinal && len < 15) || Config.FinalSigmasType == "zero");
        bool lowerOrderSecond = i == len - 2 && Config.LowerOrderFinal && len < 15;
        using var scope = NewDisposeScope();
        var converted = ConvertModelOutput(modelOutput, sample, i);
        _modelOutputs[0]?.Dispose();
        for (int k = 0; k < _modelOutputs.Length - 1; k++) _modelOutputs[k] = _modelOutputs[k + 1];
        _modelOutputs[^1] = converted.alias().DetachFromDisposeScope();
        var x = sample.to_type(ScalarType.Float32);
        Tensor? noise = Config.AlgorithmType == "sde-dpmsolver++" ? RandnLike(x, generator) : null;
        Tensor prev;
        if (Config.SolverOrder == 1 || _lowerOrderNums < 1 || lowerOrderFinal)
            prev = FirstOrderUpdate(converted, x, noise, i);
        else if (Config.SolverOrder == 2 || _lowerOrderNums < 2 || lowerOrderSecond)
            prev = SecondOrderUpdate(x, noise, i);
        else
            prev = ThirdOrderUpdate(x, i);
        if (_lowerOrderNums < Config.SolverOrder) _lowerOrderNums++;
        StepIndex = i + 1;
        return prev.to_type(modelOutput.dtype).MoveToOuterDisposeScope();
    }

    private (float alpha, float sigma, float lambda) At(int index)
    {
        var (a, s) = AlphaSigma(SigmaValues[index]);
        return (a, s, MathF.Log(a) - MathF.Log(s));
    }

    /// <summary>dpm_solver_first_order_update (DPM-Solver++ eq. 5 / DPM-Solver eq. 3.4; SDE variant with noise).</summary>
    private Tensor FirstOrderUpdate(Tensor m, Tensor x, Tensor? noise, int i)
    {
        var (aT, sT, lT) = At(i + 1);
        var (aS, sS, lS) = At(i);
        float h = lT - lS;
        switch (Config.AlgorithmType)
        {
            case "dpmsolver++":
                return Mul(x, sT / sS).sub(Mul(m, aT * (MathF.Exp(-h) - 1f)));
            case "dpmsolver":
                return Mul(x, aT / aS).sub(Mul(m, sT * (MathF.Exp(h) - 1f)));
            default: // sde-dpmsolver++
                return Mul(x, sT / sS * MathF.Exp(-h)).add(Mul(m, aT * (1f - MathF.Exp(-2f * h))))
                    .add(Mul(noise!, sT * MathF.Sqrt(1f - MathF.Exp(-2f * h))));
        }
    }

    /// <summary>multistep_dpm_solver_second_order_update.</summary>
    private Tensor SecondOrderUpdate(Tensor x, Tensor? noise, int i)
    {
        var (aT, sT, lT) = At(i + 1);
        var (aS0, sS0, lS0) = At(i);
        var (_, _, lS1) = At(i - 1);
        Tensor m0 = _modelOutputs[^1]!, m1 = _modelOutputs[^2]!;
        float h = lT - lS0, h0 = lS0 - lS1;
        float r0 = h0 / h;
        var d0 = m0;
        var d1 = Mul(m0.sub(m1), 1f / r0);
        bool heun = SolverType == "heun";
        switch (Config.AlgorithmType)
        {
            case "dpmsolver++":
            {
                float e = MathF.Exp(-h) - 1f;
                var xt = Mul(x, sT / sS0).sub(Mul(d0, aT * e));
                return heun ? xt.add(Mul(d1, aT * (e / h + 1f))) : xt.sub(Mul(d1, 0.5f * (aT * e)));
            }
            case "dpmsolver":
            {
                float e = MathF.Exp(h) - 1f;
                var xt = Mul(x, aT / aS0).sub(Mul(d0, sT * e));
                return heun ? xt.sub(Mul(d1, sT * (e / h - 1f))) : xt.sub(Mul(d1, 0.5f * (sT * e)));
            }
            default: // sde-dpmsolver++
            {
                float e2 = 1f - MathF.Exp(-2f * h);
                var xt = Mul(x, sT / sS0 * MathF.Exp(-h)).add(Mul(d0, aT * e2));
                xt = heun ? xt.add(Mul(d1, aT * (e2 / (-2f * h) + 1f))) : xt.add(Mul(d1, 0.5f * (aT * e2)));
                return xt.add(Mul(noise!, sT * MathF.Sqrt(e2)));
            }
        }
    }

    /// <summary>multistep_dpm_solver_third_order_update (ODE variants; diffusers' SDE third order adds the same noise term).</summary>
    private Tensor ThirdOrderUpdate(Tensor x, int i)
    {
        var (aT, sT, lT) = At(i + 1);
        var (aS0, sS0, lS0) = At(i);
        var (_, _, lS1) = At(i - 1);
        var (_, _, lS2) = At(i - 2);
        Tensor m0 = _modelOutputs[^1]!, m1 = _modelOutputs[^2]!, m2 = _modelOutputs[^3]!;
        float h = lT - lS0, h0 = lS0 - lS1, h1 = lS1 - lS2;
        float r0 = h0 / h, r1 = h1 / h;
        var d10 = Mul(m0.sub(m1), 1f / r0);
        var d11 = Mul(m1.sub(m2), 1f / r1);
        var diff = d10.sub(d11);
        var d1 = d10.add(Mul(diff, r0 / (r0 + r1)));
        var d2 = Mul(diff, 1f / (r0 + r1));
        if (Config.AlgorithmType == "dpmsolver++")
        {
            float e = MathF.Exp(-h) - 1f;
            return Mul(x, sT / sS0).sub(Mul(m0, aT * e)).add(Mul(d1, aT * (e / h + 1f)))
                .sub(Mul(d2, aT * ((e + h) / (h * h) - 0.5f)));
        }
        if (Config.AlgorithmType == "dpmsolver")
        {
            float e = MathF.Exp(h) - 1f;
            return Mul(x, aT / aS0).sub(Mul(m0, sT * e)).sub(Mul(d1, sT * (e / h - 1f)))
                .sub(Mul(d2, sT * ((e - h) / (h * h) - 0.5f)));
        }
        throw new NotSupportedException("sde-dpmsolver++ with solver_order 3 is not supported");
    }

    public override Tensor AddNoise(Tensor original, Tensor noise, double timestep) =>
        AddNoiseVariancePreserving(original, noise, timestep);
}
