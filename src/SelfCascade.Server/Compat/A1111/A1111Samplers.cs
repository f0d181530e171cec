namespace SelfCascade.Server.Compat.A1111;

/// <summary>
/// A1111 sampler and scheduler names (modules/sd_samplers_kdiffusion.py, sd_samplers_timesteps.py, sd_schedulers.py)
/// that map onto our schedulers. Old combined names ("DPM++ 2M Karras", "LMS Karras") are split into sampler +
/// scheduler as A1111 1.9 does. Names not listed are a 404 "Sampler not found", as A1111 answers.
/// </summary>
public static class A1111Samplers
{
    private sealed record Sampler(string Name, string[] Aliases, string Ours, TimestepChoice Automatic, Dictionary<string, object> Options);

    private static readonly Sampler[] All =
    [
        new("DPM++ 2M", ["k_dpmpp_2m"], "dpm++2m", TimestepChoice.Karras, new() { ["scheduler"] = "karras" }),
        new("Euler a", ["k_euler_a", "k_euler_ancestral"], "euler-a", TimestepChoice.ModelDefault, new() { ["uses_ensd"] = true }),
        new("Euler", ["k_euler"], "euler", TimestepChoice.ModelDefault, new()),
        new("LMS", ["k_lms"], "lms", TimestepChoice.ModelDefault, new()),
        new("DDIM", ["ddim"], "ddim", TimestepChoice.ModelDefault, new()),
        new("PLMS", ["plms"], "pndm", TimestepChoice.ModelDefault, new()),
        new("UniPC", ["unipc"], "unipc", TimestepChoice.ModelDefault, new()),
    ];

    private sealed record Scheduler(string Name, string Label, string[]? Aliases, TimestepChoice? Choice);

    /// <summary>null choice = "Automatic": the sampler's own default.</summary>
    private static readonly Scheduler[] Schedulers =
    [
        new("automatic", "Automatic", null, null),
        new("uniform", "Uniform", null, TimestepChoice.ModelDefault),
        new("karras", "Karras", null, TimestepChoice.Karras),
        new("sgm_uniform", "SGM Uniform", ["SGMUniform"], TimestepChoice.Trailing),
        new("simple", "Simple", null, TimestepChoice.Trailing),
        new("normal", "Normal", null, TimestepChoice.ModelDefault),
        new("ddim", "DDIM", null, TimestepChoice.Leading),
    ];

    /// <summary>GET /sdapi/v1/samplers.</summary>
    public static IReadOnlyList<A1111SamplerItem> Items() =>
        All.Select(s => new A1111SamplerItem(s.Name, s.Aliases, s.Options)).ToList();

    /// <summary>GET /sdapi/v1/schedulers.</summary>
    public static IReadOnlyList<A1111SchedulerItem> SchedulerItems() =>
        Schedulers.Select(s => new A1111SchedulerItem(s.Name, s.Label, s.Aliases, null, false)).ToList();

    /// <summary>
    /// The choice for a sampler name (or alias, or an old "X Karras" name) and an optional scheduler name or label;
    /// throws <see cref="A1111RequestException"/> 404 for an unknown sampler, 422 for an unknown or impossible scheduler.
    /// </summary>
    public static SamplerChoice Resolve(string samplerName, string? schedulerName)
    {
        var name = samplerName.Trim();
        TimestepChoice? fromName = null;
        var sampler = Find(name);
        if (sampler is null && name.EndsWith(" Karras", StringComparison.Ordinal))
        {
            sampler = Find(name[..^" Karras".Length]);
            fromName = TimestepChoice.Karras;
        }
        if (sampler is null) throw new A1111RequestException(404, "Sampler not found");
        TimestepChoice? explicitChoice = null;
        if (!string.IsNullOrEmpty(schedulerName))
        {
            var s = Schedulers.FirstOrDefault(x => x.Name == schedulerName || x.Label == schedulerName || (x.Aliases?.Contains(schedulerName) ?? false))
                ?? throw new A1111RequestException(422, $"scheduler '{schedulerName}' is not supported; supported: {string.Join(", ", Schedulers.Select(x => x.Label))}");
            explicitChoice = s.Choice;
        }
        var choice = new SamplerChoice(sampler.Ours, explicitChoice ?? fromName ?? sampler.Automatic);
        if (!choice.IsSupported) throw new A1111RequestException(422, $"the Karras schedule is not available with {sampler.Name}");
        return choice;

        static Sampler? Find(string n) => All.FirstOrDefault(s => s.Name == n || s.Aliases.Contains(n));
    }

    /// <summary>The canonical A1111 name of a sampler given by name or alias ("k_euler" → "Euler"), for infotexts.</summary>
    public static string CanonicalName(string samplerName)
    {
        var n = samplerName.Trim();
        var s = All.FirstOrDefault(x => x.Name == n || x.Aliases.Contains(n));
        return s?.Name ?? n;
    }
}
