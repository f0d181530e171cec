using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Training;

/// <summary>
/// AdamW (Loshchilov and Hutter), step for step as PyTorch's <c>torch.optim.AdamW</c> (single-tensor path, amsgrad
/// off): <c>p *= 1 - lr·wd</c>; <c>m = lerp(m, g, 1 - β1)</c>; <c>v = β2·v + (1 - β2)·g²</c>;
/// <c>p -= lr / (1 - β1^t) · m / (sqrt(v) / sqrt(1 - β2^t) + ε)</c>.
/// Written here rather than using TorchSharp's AdamW so that its whole state (the two moments per parameter and
/// the step count) is plain tensors with names, saved into and restored from a checkpoint bit for bit. Moments are
/// fp32 like the trainable (master) parameters.
/// </summary>
public sealed class AdamW : IDisposable
{
    private readonly (string Name, Parameter Parameter)[] _params;
    private readonly Tensor[] _expAvg;
    private readonly Tensor[] _expAvgSq;

    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Eps { get; }
    public double WeightDecay { get; }
    /// <summary>Optimizer steps taken (PyTorch's per-parameter <c>state['step']</c>, the same for all here).</summary>
    public long StepCount { get; private set; }

    public AdamW(IEnumerable<(string Name, Parameter Parameter)> parameters, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weightDecay = 0.01)
    {
        _params = parameters.ToArray();
        if (_params.Length == 0) throw new ArgumentException("AdamW needs at least one parameter", nameof(parameters));
        if (_params.Select(p => p.Name).Distinct().Count() != _params.Length) throw new ArgumentException("parameter names must be unique", nameof(parameters));
        foreach (var (name, p) in _params)
            if (p.dtype != ScalarType.Float32) throw new ArgumentException($"trainable parameter '{name}' is {p.dtype}; master weights must be fp32", nameof(parameters));
        Beta1 = beta1; Beta2 = beta2; Eps = eps; WeightDecay = weightDecay;
        _expAvg = _params.Select(p => zeros_like(p.Parameter).detach()).ToArray();
        _expAvgSq = _params.Select(p => zeros_like(p.Parameter).detach()).ToArray();
    }

    public IReadOnlyList<(string Name, Parameter Parameter)> Parameters => _params;

    /// <summary>Clears the gradients (sets them to none, as PyTorch's <c>zero_grad(set_to_none=True)</c>).</summary>
    public void ZeroGrad()
    {
        foreach (var (_, p) in _params)
        {
            var g = p.grad;
            if (g is null) continue;
            p.grad = null;
            g.Dispose();
        }
    }

    /// <summary>One update of every parameter with a gradient, at learning rate <paramref name="lr"/>.</summary>
    public void Step(double lr)
    {
        StepCount++;
        double bc1 = 1 - Math.Pow(Beta1, StepCount);
        double bc2Sqrt = Math.Sqrt(1 - Math.Pow(Beta2, StepCount));
        using var noGrad = no_grad();
        using var decay = (1 - lr * WeightDecay).ToScalar();
        using var oneMinusB1 = tensor((float)(1 - Beta1), device: _params[0].Parameter.device);
        using var b2 = Beta2.ToScalar();
        using var oneMinusB2 = (1 - Beta2).ToScalar();
        using var bc2 = bc2Sqrt.ToScalar();
        using var eps = Eps.ToScalar();
        using var negStep = (-lr / bc1).ToScalar();
        for (int i = 0; i < _params.Length; i++)
        {
            var p = _params[i].Parameter;
            using var g = p.grad;
            if (g is null) continue;
            p.mul_(decay);
            _expAvg[i].lerp_(g, oneMinusB1);
            _expAvgSq[i].mul_(b2).addcmul_(g, g, oneMinusB2);
            using var denom = _expAvgSq[i].sqrt().div_(bc2).add_(eps);
            p.addcdiv_(_expAvg[i], denom, negStep);
        }
    }

    /// <summary>The state as named tensors (<c>exp_avg/NAME</c>, <c>exp_avg_sq/NAME</c>) plus the step count.</summary>
    public IEnumerable<KeyValuePair<string, Tensor>> StateTensors()
    {
        for (int i = 0; i < _params.Length; i++)
        {
            yield return new("exp_avg/" + _params[i].Name, _expAvg[i]);
            yield return new("exp_avg_sq/" + _params[i].Name, _expAvgSq[i]);
        }
    }

    /// <summary>Restores the moments and the step count; every parameter's moments must be present with its shape.</summary>
    public void LoadState(Func<string, Tensor?> read, long stepCount)
    {
        var problems = new List<string>();
        using var noGrad = no_grad();
        for (int i = 0; i < _params.Length; i++)
        {
            foreach (var (prefix, dest) in new[] { ("exp_avg/", _expAvg[i]), ("exp_avg_sq/", _expAvgSq[i]) })
            {
                using var t = read(prefix + _params[i].Name);
                if (t is null) { problems.Add($"missing {prefix}{_params[i].Name}"); continue; }
                if (!t.shape.SequenceEqual(dest.shape)) { problems.Add($"{prefix}{_params[i].Name} has shape [{string.Join(",", t.shape)}], expected [{string.Join(",", dest.shape)}]"); continue; }
                dest.copy_(t);
            }
        }
        if (problems.Count > 0) throw new InvalidDataException("optimizer state does not fit the trainable parameters: " + string.Join("; ", problems.Take(10)) + (problems.Count > 10 ? $" (and {problems.Count - 10} more)" : ""));
        StepCount = stepCount;
    }

    public void Dispose()
    {
        foreach (var t in _expAvg) t.Dispose();
        foreach (var t in _expAvgSq) t.Dispose();
    }
}
