using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Schedulers;

/// <summary>
/// The numbers behind the schedulers, as small pure functions. Where diffusers computes in torch float32 we use
/// torch (or IEEE single arithmetic, which rounds identically); where it computes in numpy float64 we use double,
/// reproducing numpy's own formulas (linspace, arange with a float step, interp, round half to even).
/// </summary>
public static class ScheduleMath
{
    /// <summary>diffusers <c>__init__</c>: betas from trained_betas / linear / scaled_linear / squaredcos_cap_v2, in float32,
    /// then <c>rescale_zero_terminal_snr</c> when asked.</summary>
    public static float[] Betas(SchedulerConfig c)
    {
        using var scope = NewDisposeScope();
        Tensor betas;
        if (c.TrainedBetas != null)
            betas = tensor(c.TrainedBetas, dtype: ScalarType.Float32);
        else if (c.BetaSchedule == "linear")
            betas = linspace(c.BetaStart, c.BetaEnd, c.NumTrainTimesteps, dtype: ScalarType.Float32);
        else if (c.BetaSchedule == "scaled_linear")
        {
            // torch.linspace(beta_start ** 0.5, beta_end ** 0.5, n, dtype=float32) ** 2
            var root = linspace(Math.Sqrt(c.BetaStart), Math.Sqrt(c.BetaEnd), c.NumTrainTimesteps, dtype: ScalarType.Float32);
            betas = root.mul(root);
        }
        else if (c.BetaSchedule == "squaredcos_cap_v2")
            betas = tensor(BetasForAlphaBarCosine(c.NumTrainTimesteps), dtype: ScalarType.Float32);
        else throw new ArgumentException($"beta_schedule '{c.BetaSchedule}' is not supported");
        if (c.RescaleBetasZeroSnr) betas = RescaleZeroTerminalSnr(betas);
        return betas.data<float>().ToArray();
    }

    /// <summary>diffusers <c>betas_for_alpha_bar</c> (cosine): beta_i = min(1 - abar((i+1)/n) / abar(i/n), 0.999), Python floats.</summary>
    public static double[] BetasForAlphaBarCosine(int n, double maxBeta = 0.999)
    {
        static double AlphaBar(double t) { var c = Math.Cos((t + 0.008) / 1.008 * Math.PI / 2); return c * c; }
        var betas = new double[n];
        for (int i = 0; i < n; i++)
            betas[i] = Math.Min(1 - AlphaBar((double)(i + 1) / n) / AlphaBar((double)i / n), maxBeta);
        return betas;
    }

    /// <summary>diffusers <c>rescale_zero_terminal_snr</c> (Lin et al. 2023, Algorithm 1), float32 torch.</summary>
    public static Tensor RescaleZeroTerminalSnr(Tensor betas)
    {
        using var scope = NewDisposeScope();
        var alphas = 1.0f - betas;
        var abarSqrt = cumprod(alphas, 0).sqrt();
        var a0 = abarSqrt[0].clone();
        var aT = abarSqrt[-1].clone();
        abarSqrt = (abarSqrt - aT) * (a0 / (a0 - aT));
        var abar = abarSqrt.square();
        var ratio = abar[1..] / abar[..^1];
        var newAlphas = cat([abar[0..1], ratio]);
        return (1.0f - newAlphas).MoveToOuterDisposeScope();
    }

    /// <summary>alphas_cumprod = torch.cumprod(1 - betas, 0) in float32 (torch accumulates as libtorch does).</summary>
    public static float[] AlphasCumprod(float[] betas)
    {
        using var scope = NewDisposeScope();
        var b = tensor(betas, dtype: ScalarType.Float32);
        return cumprod(1.0f - b, 0).data<float>().ToArray();
    }

    /// <summary>The sigma table ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5, float32 (IEEE single ops round as torch's).</summary>
    public static float[] SigmasFromAlphasCumprod(float[] alphasCumprod) =>
        alphasCumprod.Select(a => MathF.Sqrt((1f - a) / a)).ToArray();

    /// <summary>numpy <c>np.linspace(start, stop, num)</c> in float64: start + i * ((stop - start) / (num - 1)), last = stop.</summary>
    public static double[] Linspace(double start, double stop, int num)
    {
        var y = new double[num];
        if (num == 1) { y[0] = start; return y; }
        double step = (stop - start) / (num - 1);
        for (int i = 0; i < num; i++) y[i] = i * step + start;
        y[num - 1] = stop;
        return y;
    }

    /// <summary>numpy <c>np.arange(start, stop, step)</c> for a float step: length ceil((stop - start) / step), values
    /// start + i * delta with delta = (start + step) - start (numpy's fill).</summary>
    public static double[] Arange(double start, double stop, double step)
    {
        int len = (int)Math.Ceiling((stop - start) / step);
        if (len <= 0) return [];
        var y = new double[len];
        y[0] = start;
        if (len > 1)
        {
            double delta = (start + step) - start;
            for (int i = 1; i < len; i++) y[i] = start + i * delta;
        }
        return y;
    }

    /// <summary>numpy round (half to even).</summary>
    public static double RoundHalfEven(double x) => Math.Round(x, MidpointRounding.ToEven);

    /// <summary>
    /// The integer timestep spacings of DDIM/DDPM/PNDM/Euler/LMS <c>set_timesteps</c>:
    /// linspace: round(linspace(0, T-1, n)) reversed; leading: arange(n) * (T // n) reversed + steps_offset;
    /// trailing: round(arange(T, 0, -T/n)) - 1. Returned in sampling (descending) order.
    /// Euler/LMS with linspace keep the unrounded float32 values: use <see cref="LinspaceTimestepsFloat32"/>.
    /// </summary>
    public static double[] SpacedTimesteps(string spacing, int numTrain, int n, int stepsOffset)
    {
        switch (spacing)
        {
            case "linspace":
                return Linspace(0, numTrain - 1, n).Select(RoundHalfEven).Reverse().ToArray();
            case "leading":
            {
                int ratio = numTrain / n;
                return Enumerable.Range(0, n).Select(i => (double)(i * ratio + stepsOffset)).Reverse().ToArray();
            }
            case "trailing":
            {
                double ratio = (double)numTrain / n;
                return Arange(numTrain, 0, -ratio).Select(t => RoundHalfEven(t) - 1).ToArray();
            }
            default: throw new ArgumentException($"timestep_spacing '{spacing}' is not supported");
        }
    }

    /// <summary>Euler/LMS linspace: np.linspace(0, T-1, n, dtype=float32)[::-1] (computed in float64, cast to float32).</summary>
    public static double[] LinspaceTimestepsFloat32(int numTrain, int n) =>
        Linspace(0, numTrain - 1, n).Select(t => (double)(float)t).Reverse().ToArray();

    /// <summary>
    /// The n+1-point spacings of DPMSolverMultistep/UniPC <c>set_timesteps</c> (the last point dropped):
    /// linspace: round(linspace(0, last-1, n+1))[::-1][:-1]; leading: arange(n+1) * (last // (n+1)) reversed,
    /// dropped, + steps_offset; trailing: round(arange(last, 0, -T/n)) - 1.
    /// </summary>
    public static double[] MultistepTimesteps(string spacing, int numTrain, int lastTimestep, int n, int stepsOffset)
    {
        switch (spacing)
        {
            case "linspace":
                return Linspace(0, lastTimestep - 1, n + 1).Select(RoundHalfEven).Reverse().Take(n).ToArray();
            case "leading":
            {
                int ratio = lastTimestep / (n + 1);
                return Enumerable.Range(0, n + 1).Select(i => (double)(i * ratio)).Reverse().Take(n).Select(t => t + stepsOffset).ToArray();
            }
            case "trailing":
            {
                double ratio = (double)numTrain / n;
                return Arange(lastTimestep, 0, -ratio).Select(t => RoundHalfEven(t) - 1).ToArray();
            }
            default: throw new ArgumentException($"timestep_spacing '{spacing}' is not supported");
        }
    }

    /// <summary>numpy <c>np.interp(x, arange(len(fp)), fp)</c>: fp[j] + slope * (x - j), clamped at the ends.</summary>
    public static double Interp(double x, IReadOnlyList<float> fp)
    {
        int last = fp.Count - 1;
        if (x <= 0) return fp[0];
        if (x >= last) return fp[last];
        int j = (int)Math.Floor(x);
        double slope = ((double)fp[j + 1] - fp[j]) / 1.0;
        double r = slope * (x - j) + fp[j];
        return r;
    }

    /// <summary>diffusers <c>_convert_to_karras</c> (Karras et al. 2022, eq. 5, rho = 7), float64.</summary>
    public static double[] KarrasSigmas(double sigmaMin, double sigmaMax, int n, double rho = 7.0)
    {
        var ramp = Linspace(0, 1, n);
        double minInv = Math.Pow(sigmaMin, 1 / rho), maxInv = Math.Pow(sigmaMax, 1 / rho);
        return ramp.Select(r => Math.Pow(maxInv + r * (minInv - maxInv), rho)).ToArray();
    }

    /// <summary>diffusers <c>_sigma_to_t</c>: the fractional training timestep whose log-sigma (float32 table) matches,
    /// by linear interpolation between neighbours.</summary>
    public static double SigmaToT(double sigma, float[] logSigmas)
    {
        double logSigma = Math.Log(Math.Max(sigma, 1e-10));
        // low_idx = cumsum(dists >= 0).argmax(): the last index whose log sigma is <= log_sigma (the table ascends),
        // 0 when none; clipped to len - 2.
        int count = 0, lowIdx = 0;
        for (int i = 0; i < logSigmas.Length; i++)
            if (logSigma - logSigmas[i] >= 0) { count++; lowIdx = i; }
        if (count == 0) lowIdx = 0;
        lowIdx = Math.Min(lowIdx, logSigmas.Length - 2);
        int highIdx = lowIdx + 1;
        float low = logSigmas[lowIdx], high = logSigmas[highIdx];
        double w = (low - logSigma) / (float)(low - high);
        w = Math.Clamp(w, 0, 1);
        return (1 - w) * lowIdx + w * highIdx;
    }

    /// <summary>np.log of a float32 array (float32 result).</summary>
    public static float[] LogFloat32(float[] x) => x.Select(v => MathF.Log(v)).ToArray();

    /// <summary>expm1 with full relative precision near 0 (Kahan's trick), as torch.expm1.</summary>
    public static double Expm1(double x)
    {
        if (double.IsNegativeInfinity(x)) return -1;
        double u = Math.Exp(x);
        if (u == 1.0) return x;
        double um1 = u - 1.0;
        if (um1 == -1.0) return -1;
        if (double.IsPositiveInfinity(u)) return u;
        return um1 * x / Math.Log(u);
    }

    /// <summary>Solves the small dense system a x = b by Gaussian elimination with partial pivoting (torch.linalg.solve).</summary>
    public static double[] Solve(double[,] a, double[] b)
    {
        int n = b.Length;
        var m = (double[,])a.Clone();
        var x = (double[])b.Clone();
        for (int k = 0; k < n; k++)
        {
            int p = k;
            for (int i = k + 1; i < n; i++) if (Math.Abs(m[i, k]) > Math.Abs(m[p, k])) p = i;
            if (p != k)
            {
                for (int j = 0; j < n; j++) (m[k, j], m[p, j]) = (m[p, j], m[k, j]);
                (x[k], x[p]) = (x[p], x[k]);
            }
            for (int i = k + 1; i < n; i++)
            {
                double f = m[i, k] / m[k, k];
                for (int j = k; j < n; j++) m[i, j] -= f * m[k, j];
                x[i] -= f * x[k];
            }
        }
        for (int i = n - 1; i >= 0; i--)
        {
            double s = x[i];
            for (int j = i + 1; j < n; j++) s -= m[i, j] * x[j];
            x[i] = s / m[i, i];
        }
        return x;
    }

    private static readonly double[] GaussLegendreNodes =
        [-0.9602898564975363, -0.7966664774136267, -0.5255324099163290, -0.1834346424956498,
          0.1834346424956498, 0.5255324099163290, 0.7966664774136267, 0.9602898564975363];
    private static readonly double[] GaussLegendreWeights =
        [0.1012285362903763, 0.2223810344533745, 0.3137066278481261, 0.3626837833783620,
         0.3626837833783620, 0.3137066278481261, 0.2223810344533745, 0.1012285362903763];

    /// <summary>
    /// The integral of f over [a, b] (b may be below a). LMS integrates Lagrange basis polynomials of degree <= 3,
    /// which scipy.integrate.quad (21-point Gauss-Kronrod) gets exact up to rounding; 8-point Gauss-Legendre is
    /// exact for degree <= 15, so both give the same number.
    /// </summary>
    public static double IntegratePolynomial(Func<double, double> f, double a, double b)
    {
        double half = (b - a) / 2, mid = (a + b) / 2, sum = 0;
        for (int i = 0; i < GaussLegendreNodes.Length; i++) sum += GaussLegendreWeights[i] * f(mid + half * GaussLegendreNodes[i]);
        return sum * half;
    }
}
