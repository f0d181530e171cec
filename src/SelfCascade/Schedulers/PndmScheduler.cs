using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Schedulers;

/// <summary>
/// diffusers PNDMScheduler (Liu et al. 2022): Runge-Kutta warm-up steps unless skip_prk_steps (SD's config), then
/// linear multistep (PLMS) with up to four past noise predictions. With skip_prk_steps the second timestep is
/// repeated: the first step is an Euler step, the second re-evaluates at the midpoint (diffusers' special case).
/// </summary>
public sealed class PndmScheduler : NoiseScheduler
{
    private const int PndmOrder = 4;
    private readonly float _finalAlphaCumprod;
    private readonly List<Tensor> _ets = [];
    private Tensor? _curSample;
    private Tensor? _curModelOutput;  // running RK sum (null = diffusers' 0)
    private int _counter;
    private double[] _prkTimesteps = [];

    public PndmScheduler(SchedulerConfig config) : base(config)
    {
        _finalAlphaCumprod = config.SetAlphaToOne ?? false ? 1f : AlphasCumprod[0];
    }

    public override string ClassName => "PNDMScheduler";

    private int StepRatio => Config.NumTrainTimesteps / NumInferenceSteps;

    protected override double[] ComputeTimesteps(int n)
    {
        // PNDMScheduler.set_timesteps: the ascending base grid _timesteps, then prk/plms lists.
        double[] asc = (Config.TimestepSpacing ?? "leading") switch
        {
            "linspace" => ScheduleMath.Linspace(0, Config.NumTrainTimesteps - 1, n).Select(ScheduleMath.RoundHalfEven).ToArray(),
            "leading" => Enumerable.Range(0, n).Select(i => (double)(i * (Config.NumTrainTimesteps / n) + Config.StepsOffset)).ToArray(),
            "trailing" => ScheduleMath.Arange(Config.NumTrainTimesteps, 0, -(double)Config.NumTrainTimesteps / n)
                .Select(ScheduleMath.RoundHalfEven).Reverse().Select(t => t - 1).ToArray(),
            var s => throw new ArgumentException($"timestep_spacing '{s}' is not supported"),
        };
        double[] plms;
        if (Config.SkipPrkSteps)
        {
            _prkTimesteps = [];
            // concatenate([_timesteps[:-1], _timesteps[-2:-1], _timesteps[-1:]])[::-1]
            var list = asc[..^1].Concat(asc[^2..^1]).Concat(asc[^1..]).ToArray();
            if (asc.Length < 2) list = asc;
            Array.Reverse(list);
            plms = list;
        }
        else
        {
            // prk = repeat(_timesteps[-4:], 2) + tile([0, T // n // 2], 4); prk[:-1].repeat(2)[1:-1][::-1]
            var last = asc.Skip(Math.Max(0, asc.Length - PndmOrder)).ToArray();
            int half = Config.NumTrainTimesteps / n / 2;
            var prk = new List<double>();
            for (int i = 0; i < last.Length; i++) { prk.Add(last[i]); prk.Add(last[i] + half); }
            for (int i = prk.Count; i < 2 * PndmOrder; i++) prk.Add(i % 2 == 0 ? 0 : half); // tile length mismatch never happens for n >= 4
            var dropLast = prk.Take(prk.Count - 1).SelectMany(v => new[] { v, v }).ToList();
            var inner = dropLast.Skip(1).Take(dropLast.Count - 2).ToArray();
            Array.Reverse(inner);
            _prkTimesteps = inner;
            plms = asc.Take(Math.Max(0, asc.Length - 3)).Reverse().ToArray();
        }
        return _prkTimesteps.Concat(plms).ToArray();
    }

    protected override void ResetState()
    {
        foreach (var e in _ets) e.Dispose();
        _ets.Clear();
        _curSample?.Dispose(); _curSample = null;
        _curModelOutput?.Dispose(); _curModelOutput = null;
        _counter = 0;
    }

    public override Tensor Step(Tensor modelOutput, double timestep, Tensor sample, Generator? generator = null)
    {
        EnsureTimestepsSet();
        return _counter < _prkTimesteps.Length && !Config.SkipPrkSteps
            ? StepPrk(modelOutput, (int)timestep, sample)
            : StepPlms(modelOutput, (int)timestep, sample);
    }

    private static Tensor Keep(Tensor t) => t.alias().DetachFromDisposeScope();

    private Tensor StepPrk(Tensor modelOutput, int timestep, Tensor sample)
    {
        using var scope = NewDisposeScope();
        int diffToPrev = _counter % 2 == 1 ? 0 : StepRatio / 2;
        int prevTimestep = timestep - diffToPrev;
        int t = (int)_prkTimesteps[_counter / 4 * 4];
        Tensor output = modelOutput;
        switch (_counter % 4)
        {
            case 0:
                AccumulateRk(modelOutput, 1.0 / 6);
                _ets.Add(Keep(modelOutput));
                _curSample?.Dispose();
                _curSample = Keep(sample);
                break;
            case 1:
            case 2:
                AccumulateRk(modelOutput, 1.0 / 3);
                break;
            case 3:
                output = Mul(modelOutput, 1.0 / 6);
                if (_curModelOutput is not null) output = _curModelOutput.add(output);
                _curModelOutput?.Dispose();
                _curModelOutput = null;
                break;
        }
        var cur = _curSample ?? sample;
        var prev = PrevSample(cur, t, prevTimestep, output);
        _counter++;
        return prev.MoveToOuterDisposeScope();
    }

    private void AccumulateRk(Tensor modelOutput, double weight)
    {
        var term = Mul(modelOutput, weight);
        var sum = _curModelOutput is null ? term : _curModelOutput.add(term);
        if (_curModelOutput is not null) _curModelOutput.Dispose();
        _curModelOutput = Keep(sum);
    }

    private Tensor StepPlms(Tensor modelOutput, int timestep, Tensor sample)
    {
        if (!Config.SkipPrkSteps && _ets.Count < 3)
            throw new InvalidOperationException("PNDM: PLMS needs three Runge-Kutta steps first (diffusers raises here too)");
        using var scope = NewDisposeScope();
        int prevTimestep = timestep - StepRatio;
        if (_counter != 1)
        {
            while (_ets.Count > 3) { _ets[0].Dispose(); _ets.RemoveAt(0); }
            _ets.Add(Keep(modelOutput));
        }
        else
        {
            prevTimestep = timestep;
            timestep += StepRatio;
        }
        Tensor output;
        Tensor x = sample;
        int n = _ets.Count;
        if (n == 1 && _counter == 0)
        {
            output = modelOutput;
            _curSample?.Dispose();
            _curSample = Keep(sample);
        }
        else if (n == 1 && _counter == 1)
        {
            output = Div(modelOutput.add(_ets[^1]), 2);
            x = _curSample!;
        }
        else if (n == 2)
            output = Div(Mul(_ets[^1], 3).sub(_ets[^2]), 2);
        else if (n == 3)
            output = Div(Mul(_ets[^1], 23).sub(Mul(_ets[^2], 16)).add(Mul(_ets[^3], 5)), 12);
        else
            output = Mul(Mul(_ets[^1], 55).sub(Mul(_ets[^2], 59)).add(Mul(_ets[^3], 37)).sub(Mul(_ets[^4], 9)), 1.0 / 24);
        var prev = PrevSample(x, timestep, prevTimestep, output);
        if (n == 1 && _counter == 1) { _curSample!.Dispose(); _curSample = null; }
        _counter++;
        return prev.MoveToOuterDisposeScope();
    }

    /// <summary>PNDMScheduler._get_prev_sample: formula (9) of the PNDM paper, float32 coefficients.</summary>
    private Tensor PrevSample(Tensor sample, int timestep, int prevTimestep, Tensor modelOutput)
    {
        float aT = AlphasCumprod[timestep];
        float aPrev = prevTimestep >= 0 ? AlphasCumprod[prevTimestep] : _finalAlphaCumprod;
        float bT = 1f - aT, bPrev = 1f - aPrev;
        if (Config.PredictionType == "v_prediction")
            modelOutput = Combine(MathF.Sqrt(aT), modelOutput, MathF.Sqrt(bT), sample);
        else if (Config.PredictionType != "epsilon")
            throw new NotSupportedException($"PNDM supports epsilon and v_prediction, not '{Config.PredictionType}'");
        float sampleCoeff = MathF.Sqrt(aPrev / aT);
        float denom = aT * MathF.Sqrt(bPrev) + MathF.Sqrt(aT * bT * aPrev);
        // sample_coeff * sample - (a_prev - a_t) * model_output / denom
        var scaled = Mul(modelOutput, aPrev - aT);
        return Mul(sample, sampleCoeff).sub(Div(scaled, denom));
    }

    public override Tensor AddNoise(Tensor original, Tensor noise, double timestep) =>
        Prediction.AddNoiseAlphaBar(original, noise, AlphasCumprod[(int)timestep]);
}
