namespace SelfCascade.Schedulers;

/// <summary>Builds schedulers from a diffusers config (<c>_class_name</c>) or from a CLI name over a model's config.</summary>
public static class SchedulerFactory
{
    /// <summary>The CLI names, in help order.</summary>
    public static IReadOnlyList<string> Names { get; } =
        ["ddim", "pndm", "euler", "euler-a", "dpm++2m", "dpm++2m-karras", "lms", "unipc", "ddpm"];

    /// <summary>The diffusers class names this library implements.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
    [
        "DDIMScheduler", "PNDMScheduler", "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler",
        "DPMSolverMultistepScheduler", "LMSDiscreteScheduler", "UniPCMultistepScheduler", "DDPMScheduler",
    ];

    /// <summary>The scheduler named by the config's <c>_class_name</c>.</summary>
    public static NoiseScheduler Create(SchedulerConfig config) => config.ClassName switch
    {
        "DDIMScheduler" => new DdimScheduler(config),
        "PNDMScheduler" => new PndmScheduler(config),
        "EulerDiscreteScheduler" => new EulerDiscreteScheduler(config),
        "EulerAncestralDiscreteScheduler" => new EulerAncestralDiscreteScheduler(config),
        "DPMSolverMultistepScheduler" => new DpmSolverMultistepScheduler(config),
        "LMSDiscreteScheduler" => new LmsDiscreteScheduler(config),
        "UniPCMultistepScheduler" => new UniPcMultistepScheduler(config),
        "DDPMScheduler" => new DdpmScheduler(config),
        var other => throw new ArgumentException(
            $"scheduler class '{other}' is not supported; supported: {string.Join(", ", ClassNames)}", nameof(config)),
    };

    /// <summary>
    /// A scheduler chosen by CLI name over a model's scheduler config, as diffusers'
    /// <c>NewScheduler.from_config(pipe.scheduler.config, ...)</c>: the betas, prediction type, spacing and offsets
    /// carry over; dpm++2m sets algorithm_type dpmsolver++ and solver_order 2, dpm++2m-karras adds use_karras_sigmas.
    /// </summary>
    public static NoiseScheduler Create(string name, SchedulerConfig baseConfig)
    {
        var config = name.ToLowerInvariant() switch
        {
            "ddim" => baseConfig with { ClassName = "DDIMScheduler" },
            // The CLI name means PNDM as SD ships it (PLMS, no Runge-Kutta warm-up), whatever the base config says.
            "pndm" => baseConfig with { ClassName = "PNDMScheduler", SkipPrkSteps = true },
            "euler" => baseConfig with { ClassName = "EulerDiscreteScheduler" },
            "euler-a" => baseConfig with { ClassName = "EulerAncestralDiscreteScheduler" },
            "dpm++2m" => baseConfig with { ClassName = "DPMSolverMultistepScheduler", AlgorithmType = "dpmsolver++", SolverOrder = 2, UseKarrasSigmas = false },
            "dpm++2m-karras" => baseConfig with { ClassName = "DPMSolverMultistepScheduler", AlgorithmType = "dpmsolver++", SolverOrder = 2, UseKarrasSigmas = true },
            "lms" => baseConfig with { ClassName = "LMSDiscreteScheduler" },
            "unipc" => baseConfig with { ClassName = "UniPCMultistepScheduler" },
            "ddpm" => baseConfig with { ClassName = "DDPMScheduler" },
            _ => throw new ArgumentException($"unknown scheduler '{name}'; valid names: {string.Join(", ", Names)}", nameof(name)),
        };
        return Create(config);
    }
}
