using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Schedulers;

/// <summary>
/// A diffusers noise scheduler. Usage, as diffusers' pipelines:
/// <code>
/// scheduler.SetTimesteps(steps);
/// x = noise * scheduler.InitNoiseSigma;
/// foreach (var t in scheduler.Timesteps) { xin = ScaleModelInput(x, t); eps = unet(xin, t); x = Step(eps, t, x, generator); }
/// </code>
/// Timesteps are doubles holding exactly diffusers' values (integers for the int64 schedules; the float32 values of
/// Euler/LMS with linspace spacing); <see cref="TimestepDType"/> says which tensor type diffusers hands the UNet.
/// Every tensor returned is a new handle owned by the caller (<see cref="ScaleModelInput"/> returns an alias where
/// diffusers returns its input). Solver history is owned by the scheduler and freed by SetTimesteps and Dispose.
/// </summary>
public abstract class NoiseScheduler : IDisposable
{
    protected NoiseScheduler(SchedulerConfig config)
    {
        config.ThrowIfInvalid();
        Config = config;
        Betas = ScheduleMath.Betas(config);
        AlphasCumprod = ScheduleMath.AlphasCumprod(Betas);
    }

    public SchedulerConfig Config { get; }

    /// <summary>diffusers' class name (DDIMScheduler, EulerDiscreteScheduler, ...).</summary>
    public abstract string ClassName { get; }

    /// <summary>betas and alphas_cumprod over the training timesteps (float32, as diffusers' tensors).</summary>
    public float[] Betas { get; }
    public float[] AlphasCumprod { get; protected set; }

    protected double[] TimestepValues = [];
    public IReadOnlyList<double> Timesteps => TimestepValues;

    /// <summary>Int64 or Float32: the dtype of diffusers' <c>scheduler.timesteps</c>.</summary>
    public virtual ScalarType TimestepDType => ScalarType.Int64;

    /// <summary>The sigmas of sigma-based schedulers (length steps + 1, float32 values); null for DDIM/PNDM/DDPM.</summary>
    public virtual IReadOnlyList<float>? Sigmas => null;

    public virtual double InitNoiseSigma => 1.0;
    public int NumInferenceSteps { get; private set; }

    /// <summary>diffusers' <c>scheduler.order</c> (1 for every scheduler here).</summary>
    public virtual int Order => 1;

    /// <summary>diffusers <c>set_timesteps(n)</c>; also clears all per-run state (step index, begin index, solver history).</summary>
    public void SetTimesteps(int numInferenceSteps)
    {
        if (numInferenceSteps < 1) throw new ArgumentOutOfRangeException(nameof(numInferenceSteps), "needs at least one step");
        if (numInferenceSteps > Config.NumTrainTimesteps)
            throw new ArgumentOutOfRangeException(nameof(numInferenceSteps), $"{numInferenceSteps} steps exceed num_train_timesteps = {Config.NumTrainTimesteps}");
        ResetState();
        NumInferenceSteps = numInferenceSteps;
        TimestepValues = ComputeTimesteps(numInferenceSteps);
    }

    protected abstract double[] ComputeTimesteps(int numInferenceSteps);

    /// <summary>Clears per-run state and frees the solver history.</summary>
    protected virtual void ResetState() { }

    protected void EnsureTimestepsSet()
    {
        if (NumInferenceSteps == 0) throw new InvalidOperationException($"{ClassName}: call SetTimesteps before stepping");
    }

    /// <summary>diffusers <c>scale_model_input(sample, t)</c>.</summary>
    public virtual Tensor ScaleModelInput(Tensor sample, double timestep) => sample.alias();

    /// <summary>diffusers <c>step(model_output, t, sample, generator=generator).prev_sample</c>.</summary>
    public abstract Tensor Step(Tensor modelOutput, double timestep, Tensor sample, Generator? generator = null);

    /// <summary>diffusers <c>add_noise(original, noise, t)</c> for one timestep shared by the batch.</summary>
    public abstract Tensor AddNoise(Tensor original, Tensor noise, double timestep);

    /// <summary>Whether diffusers' class has <c>set_begin_index</c> (the sigma-based ones).</summary>
    public virtual bool SupportsBeginIndex => false;

    /// <summary>diffusers <c>set_begin_index</c>: the first step runs at this index instead of looking the timestep up.</summary>
    public virtual void SetBeginIndex(int beginIndex) =>
        throw new NotSupportedException($"{ClassName} has no begin index");

    /// <summary>
    /// diffusers StableDiffusionImg2ImgPipeline: <c>set_timesteps(n)</c> then <c>get_timesteps(n, strength)</c>:
    /// init = min(int(n * strength), n), start = max(n - init, 0), timesteps[start * order:], and
    /// <c>set_begin_index(start * order)</c> where the scheduler has it. Returns the remaining timesteps and the start index.
    /// </summary>
    public (IReadOnlyList<double> Timesteps, int StartIndex) GetImg2ImgTimesteps(int numInferenceSteps, double strength)
    {
        if (!(strength >= 0 && strength <= 1)) throw new ArgumentOutOfRangeException(nameof(strength), "strength must lie in [0, 1]");
        SetTimesteps(numInferenceSteps);
        int init = Math.Min((int)(numInferenceSteps * strength), numInferenceSteps);
        int start = Math.Max(numInferenceSteps - init, 0) * Order;
        if (SupportsBeginIndex) SetBeginIndex(start);
        return (TimestepValues.Skip(start).ToArray(), start);
    }

    /// <summary>A timestep as the tensor diffusers passes to the UNet (int64 or float32, shape []).</summary>
    public Tensor TimestepTensor(double timestep, Device? device = null) =>
        TimestepDType == ScalarType.Int64 ? tensor((long)timestep, device: device) : tensor((float)timestep, device: device);

    // ------------------------------------------------------------------ training helpers (DDPM forward process)

    /// <summary>DDPMScheduler.add_noise with per-sample integer training timesteps: sqrt(abar_t) x0 + sqrt(1 - abar_t) noise.</summary>
    public Tensor AddTrainingNoise(Tensor x0, Tensor noise, Tensor timesteps)
    {
        using var scope = NewDisposeScope();
        var (a, s) = TrainingCoefficients(x0, timesteps);
        return (a * x0 + s * noise).MoveToOuterDisposeScope();
    }

    /// <summary>The regression target for training: epsilon -> noise, v_prediction -> sqrt(abar_t) noise - sqrt(1 - abar_t) x0
    /// (diffusers get_velocity), sample -> x0.</summary>
    public Tensor GetTrainingTarget(Tensor x0, Tensor noise, Tensor timesteps)
    {
        switch (Config.PredictionType)
        {
            case "epsilon": return noise.alias();
            case "sample": return x0.alias();
            default:
            {
                using var scope = NewDisposeScope();
                var (a, s) = TrainingCoefficients(x0, timesteps);
                return (a * noise - s * x0).MoveToOuterDisposeScope();
            }
        }
    }

    private (Tensor sqrtAlpha, Tensor sqrtOneMinusAlpha) TrainingCoefficients(Tensor like, Tensor timesteps)
    {
        var ac = tensor(AlphasCumprod, device: like.device).to_type(like.dtype);
        var abar = ac.index_select(0, timesteps.to(like.device).to_type(ScalarType.Int64).flatten());
        var shape = new long[like.dim()];
        Array.Fill(shape, 1L);
        shape[0] = -1;
        using var one = 1.0f.ToScalar(); // no implicit Scalar (it would leak one per call)
        return (abar.sqrt().reshape(shape), abar.neg().add(one).sqrt().reshape(shape));
    }

    // ------------------------------------------------------------------ shared pieces

    /// <summary>diffusers <c>randn_tensor(shape, generator, device, dtype)</c>: drawn on the generator's device (CPU
    /// generator: on the CPU, then moved), so a seed gives the same noise on every device.</summary>
    protected static Tensor RandnLike(Tensor like, Generator? generator)
    {
        if (generator is null) return randn(like.shape, dtype: like.dtype, device: like.device);
        var drawn = randn(like.shape, dtype: like.dtype, device: generator.device, generator: generator);
        if (drawn.device.type == like.device.type && drawn.device.index == like.device.index) return drawn;
        var moved = drawn.to(like.device);
        drawn.Dispose();
        return moved;
    }

    protected static Tensor Mul(Tensor t, double c)
    {
        using var s = c.ToScalar();
        return t.mul(s);
    }

    protected static Tensor Div(Tensor t, double c)
    {
        using var s = c.ToScalar();
        return t.div(s);
    }

    /// <summary>a * x + b * y.</summary>
    protected static Tensor Combine(double a, Tensor x, double b, Tensor y)
    {
        using var ax = Mul(x, a);
        using var by = Mul(y, b);
        return ax.add(by);
    }

    /// <summary>Clamps to [-range, range].</summary>
    protected static Tensor Clamp(Tensor t, double range)
    {
        using var lo = (-range).ToScalar();
        using var hi = range.ToScalar();
        return t.clamp(lo, hi);
    }

    public void Dispose()
    {
        ResetState();
        GC.SuppressFinalize(this);
    }
}
