using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Schedulers;

/// <summary>
/// diffusers UniPCMultistepScheduler (Zhao et al. 2023): UniP predictor plus UniC corrector (applied at the start of
/// every step but the first to the sample the previous predictor produced), bh2 by default, data prediction
/// (predict_x0). Orders ramp up from 1 and drop at the end under lower_order_final.
/// </summary>
public sealed class UniPcMultistepScheduler : SigmaScheduler
{
    private readonly Tensor?[] _modelOutputs;
    private int _lowerOrderNums;
    private int _thisOrder;
    private Tensor? _lastSample;

    public UniPcMultistepScheduler(SchedulerConfig config) : base(config)
    {
        _modelOutputs = new Tensor?[config.SolverOrder];
    }

    public override string ClassName => "UniPCMultistepScheduler";

    private bool Bh1 => Config.SolverType == "bh1"; // bh2 is the default; midpoint/heun/logrho map to bh2 in diffusers

    protected override int MissingTimestepIndex(double timestep) => TimestepValues.Length - 1;

    protected override double[] ComputeTimesteps(int n)
    {
        double[] timesteps = ScheduleMath.MultistepTimesteps(Config.TimestepSpacing ?? "linspace", Config.NumTrainTimesteps, Config.NumTrainTimesteps, n, Config.StepsOffset);
        if (Config.UseKarrasSigmas)
        {
            var sigmas = ScheduleMath.KarrasSigmas(Config.SigmaMin ?? TrainSigmas[0], Config.SigmaMax ?? TrainSigmas[^1], n);
            timesteps = sigmas.Select(s => ScheduleMath.RoundHalfEven(ScheduleMath.SigmaToT(s, LogTrainSigmas))).ToArray();
            // UniPC's Karras branch ends on the last Karras sigma for sigma_min (unlike DPM-Solver's training sigma_min).
            double last = Config.FinalSigmasType == "sigma_min" ? sigmas[^1] : 0;
            SigmaValues = sigmas.Append(last).Select(s => (float)s).ToArray();
        }
        else
        {
            var sigmas = timesteps.Select(t => ScheduleMath.Interp(t, TrainSigmas));
            double last = Config.FinalSigmasType == "sigma_min" ? MathF.Sqrt((1f - AlphasCumprod[0]) / AlphasCumprod[0]) : 0;
            SigmaValues = sigmas.Append(last).Select(s => (float)s).ToArray();
        }
        return timesteps;
    }

    protected override void ResetState()
    {
        base.ResetState();
        for (int i = 0; i < _modelOutputs.Length; i++) { _modelOutputs[i]?.Dispose(); _modelOutputs[i] = null; }
        _lastSample?.Dispose();
        _lastSample = null;
        _lowerOrderNums = 0;
        _thisOrder = 0;
    }

    private (float alpha, float sigma, float lambda) At(int index)
    {
        var (a, s) = AlphaSigma(SigmaValues[index]);
        return (a, s, MathF.Log(a) - MathF.Log(s));
    }

    /// <summary>convert_model_output: x0 when predict_x0 (default), else the noise prediction.</summary>
    private Tensor ConvertModelOutput(Tensor modelOutput, Tensor sample, int i)
    {
        var (alpha, sigma) = AlphaSigma(SigmaValues[i]);
        return (Config.PredictX0, Config.PredictionType) switch
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
        using var scope = NewDisposeScope();
        bool useCorrector = i > 0 && !Config.DisableCorrector.Contains(i - 1) && _lastSample is not null;
        var converted = ConvertModelOutput(modelOutput, sample, i);
        var x = sample;
        if (useCorrector) x = CorrectorUpdate(converted, _lastSample!, x, _thisOrder, i);
        _modelOutputs[0]?.Dispose();
        for (int k = 0; k < _modelOutputs.Length - 1; k++) _modelOutputs[k] = _modelOutputs[k + 1];
        _modelOutputs[^1] = converted.alias().DetachFromDisposeScope();
        int order = Config.LowerOrderFinal ? Math.Min(Config.SolverOrder, TimestepValues.Length - i) : Config.SolverOrder;
        _thisOrder = Math.Min(order, _lowerOrderNums + 1);
        _lastSample?.Dispose();
        _lastSample = x.alias().DetachFromDisposeScope();
        var prev = PredictorUpdate(x, _thisOrder, i);
        if (_lowerOrderNums < Config.SolverOrder) _lowerOrderNums++;
        StepIndex = i + 1;
        return prev.MoveToOuterDisposeScope();
    }

    /// <summary>The shared B(h) coefficients of UniP/UniC: R (powers of r_k), b, h_phi_1 and B_h (bh1: hh, bh2: expm1(hh)).</summary>
    private (double[,] r, double[] b, double hPhi1, double bH) Coefficients(double[] rks, double hh, int order)
    {
        double hPhi1 = ScheduleMath.Expm1(hh);
        double hPhiK = hPhi1 / hh - 1;
        double factorial = 1;
        double bH = Bh1 ? hh : ScheduleMath.Expm1(hh);
        var r = new double[order, rks.Length];
        var b = new double[order];
        for (int k = 1; k <= order; k++)
        {
            for (int j = 0; j < rks.Length; j++) r[k - 1, j] = Math.Pow(rks[j], k - 1);
            b[k - 1] = hPhiK * factorial / bH;
            factorial *= k + 1;
            hPhiK = hPhiK / hh - 1 / factorial;
        }
        return (r, b, hPhi1, bH);
    }

    /// <summary>multistep_uni_p_bh_update: the predictor from step i to i + 1.</summary>
    private Tensor PredictorUpdate(Tensor x, int order, int i)
    {
        var (aT, sT, lT) = At(i + 1);
        var (aS0, sS0, lS0) = At(i);
        double h = (double)(lT - lS0);
        var m0 = _modelOutputs[^1]!;
        var rks = new List<double>();
        var d1s = new List<Tensor>();
        for (int k = 1; k < order; k++)
        {
            var (_, _, lSi) = At(i - k);
            double rk = (float)(lSi - lS0) / (float)h;
            rks.Add(rk);
            d1s.Add(Div(_modelOutputs[^(k + 1)]!.sub(m0), rk));
        }
        rks.Add(1.0);
        double hh = Config.PredictX0 ? -h : h;
        var (r, b, hPhi1, bH) = Coefficients(rks.ToArray(), hh, order);
        double[] rhosP = [];
        if (d1s.Count > 0)
        {
            if (order == 2) rhosP = [0.5];
            else
            {
                int m = order - 1;
                var rr = new double[m, m];
                for (int p = 0; p < m; p++) for (int q = 0; q < m; q++) rr[p, q] = r[p, q];
                rhosP = ScheduleMath.Solve(rr, b[..m]);
            }
        }
        var (scaleX, scaleM, outer) = Config.PredictX0
            ? (sT / sS0, aT * hPhi1, aT * bH)
            : (aT / aS0, sT * hPhi1, sT * bH);
        var xt = Mul(x, scaleX).sub(Mul(m0, scaleM));
        if (d1s.Count > 0)
        {
            Tensor res = Mul(d1s[0], rhosP[0]);
            for (int k = 1; k < d1s.Count; k++) res = res.add(Mul(d1s[k], rhosP[k]));
            xt = xt.sub(Mul(res, outer));
        }
        return xt.to_type(x.dtype);
    }

    /// <summary>multistep_uni_c_bh_update: corrects the sample the previous predictor produced (step i - 1 to i),
    /// using this step's converted output.</summary>
    private Tensor CorrectorUpdate(Tensor modelT, Tensor lastSample, Tensor thisSample, int order, int i)
    {
        var (aT, sT, lT) = At(i);
        var (aS0, sS0, lS0) = At(i - 1);
        double h = (double)(lT - lS0);
        var m0 = _modelOutputs[^1]!;
        var rks = new List<double>();
        var d1s = new List<Tensor>();
        for (int k = 1; k < order; k++)
        {
            var (_, _, lSi) = At(i - (k + 1));
            double rk = (float)(lSi - lS0) / (float)h;
            rks.Add(rk);
            d1s.Add(Div(_modelOutputs[^(k + 1)]!.sub(m0), rk));
        }
        rks.Add(1.0);
        double hh = Config.PredictX0 ? -h : h;
        var (r, b, hPhi1, bH) = Coefficients(rks.ToArray(), hh, order);
        double[] rhosC = order == 1 ? [0.5] : ScheduleMath.Solve(r, b);
        var (scaleX, scaleM, outer) = Config.PredictX0
            ? (sT / sS0, aT * hPhi1, aT * bH)
            : (aT / aS0, sT * hPhi1, sT * bH);
        var xt = Mul(lastSample, scaleX).sub(Mul(m0, scaleM));
        var d1t = modelT.sub(m0);
        Tensor corr = Mul(d1t, rhosC[^1]);
        if (d1s.Count > 0)
        {
            Tensor res = Mul(d1s[0], rhosC[0]);
            for (int k = 1; k < d1s.Count; k++) res = res.add(Mul(d1s[k], rhosC[k]));
            corr = res.add(corr);
        }
        return xt.sub(Mul(corr, outer)).to_type(lastSample.dtype);
    }

    public override Tensor AddNoise(Tensor original, Tensor noise, double timestep) =>
        AddNoiseVariancePreserving(original, noise, timestep);
}
