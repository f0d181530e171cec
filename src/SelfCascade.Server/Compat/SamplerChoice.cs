using SelfCascade.Schedulers;

namespace SelfCascade.Server.Compat;

/// <summary>How a scheduler of ours is configured for a sampler/scheduler pair named by a foreign API.</summary>
public enum TimestepChoice
{
    /// <summary>The spacing the model's own scheduler config names (ComfyUI "normal", A1111 "Automatic"/"Uniform").</summary>
    ModelDefault,
    /// <summary>timestep_spacing = leading (ComfyUI "ddim_uniform": DDIM's uniform steps with the +1 offset SD configs carry).</summary>
    Leading,
    /// <summary>timestep_spacing = trailing (ComfyUI "simple"/"sgm_uniform", A1111 "SGM Uniform").</summary>
    Trailing,
    /// <summary>use_karras_sigmas = true (Euler, LMS, DPM++ 2M, UniPC).</summary>
    Karras,
}

/// <summary>
/// One of our schedulers (by CLI name, <see cref="SchedulerFactory.Names"/>) plus a timestep choice: what a foreign
/// sampler name maps onto. Only the noise schedule family and spacing are mapped; the foreign samplers' own numerics
/// (k-diffusion's sigma ladders, A1111's step counting) are not reproduced, see docs/SERVER-COMPAT.md.
/// </summary>
public sealed record SamplerChoice(string Scheduler, TimestepChoice Timesteps = TimestepChoice.ModelDefault)
{
    /// <summary>Our schedulers whose sigmas can follow Karras et al.'s ladder.</summary>
    public static readonly IReadOnlySet<string> KarrasCapable = new HashSet<string> { "euler", "lms", "dpm++2m", "unipc" };

    /// <summary>Whether this combination exists here (Karras only on sigma-based schedulers).</summary>
    public bool IsSupported => Timesteps != TimestepChoice.Karras || KarrasCapable.Contains(Scheduler);

    /// <summary>
    /// The CLI scheduler name that configures exactly this choice (what the job engine takes), or null when the choice
    /// needs a spacing or sigma option no CLI name carries (then only graph execution can run it).
    /// </summary>
    public string? CliName => Timesteps switch
    {
        TimestepChoice.ModelDefault => Scheduler,
        TimestepChoice.Karras when Scheduler == "dpm++2m" => "dpm++2m-karras",
        _ => null,
    };

    /// <summary>The scheduler config: the model's default config with the class, solver and spacing this choice names.</summary>
    public SchedulerConfig Configure(SchedulerConfig modelDefault)
    {
        if (!IsSupported) throw new ArgumentException($"the karras schedule is not available with {Scheduler}");
        var c = Scheduler switch
        {
            "ddim" => modelDefault with { ClassName = "DDIMScheduler" },
            "pndm" => modelDefault with { ClassName = "PNDMScheduler", SkipPrkSteps = true },
            "euler" => modelDefault with { ClassName = "EulerDiscreteScheduler" },
            "euler-a" => modelDefault with { ClassName = "EulerAncestralDiscreteScheduler" },
            "dpm++2m" => modelDefault with { ClassName = "DPMSolverMultistepScheduler", AlgorithmType = "dpmsolver++", SolverOrder = 2 },
            "dpm++2m-karras" => modelDefault with { ClassName = "DPMSolverMultistepScheduler", AlgorithmType = "dpmsolver++", SolverOrder = 2, UseKarrasSigmas = true },
            "lms" => modelDefault with { ClassName = "LMSDiscreteScheduler" },
            "unipc" => modelDefault with { ClassName = "UniPCMultistepScheduler" },
            "ddpm" => modelDefault with { ClassName = "DDPMScheduler" },
            _ => throw new ArgumentException($"unknown scheduler '{Scheduler}'"),
        };
        return Timesteps switch
        {
            TimestepChoice.Leading => c with { TimestepSpacing = "leading" },
            TimestepChoice.Trailing => c with { TimestepSpacing = "trailing" },
            TimestepChoice.Karras => c with { UseKarrasSigmas = true },
            _ => c,
        };
    }

    /// <summary>A new scheduler for this choice over the model's default config.</summary>
    public NoiseScheduler Create(SchedulerConfig modelDefault) => SchedulerFactory.Create(Configure(modelDefault));
}
