namespace SelfCascade.Server.Compat.ComfyUI;

/// <summary>
/// ComfyUI's KSampler <c>sampler_name</c> and <c>scheduler</c> values (comfy/samplers.py names) that map onto our
/// schedulers. Only these are listed in /object_info, so a workflow naming another one gets ComfyUI's own
/// "value_not_in_list" validation error.
/// </summary>
public static class ComfySamplers
{
    /// <summary>sampler_name → our scheduler (CLI name).</summary>
    public static readonly IReadOnlyDictionary<string, string> Samplers = new Dictionary<string, string>
    {
        ["euler"] = "euler",
        ["euler_ancestral"] = "euler-a",
        ["lms"] = "lms",
        ["dpmpp_2m"] = "dpm++2m",
        ["ddpm"] = "ddpm",
        ["ddim"] = "ddim",
        ["uni_pc"] = "unipc",
    };

    /// <summary>scheduler → timestep choice.</summary>
    public static readonly IReadOnlyDictionary<string, TimestepChoice> Schedulers = new Dictionary<string, TimestepChoice>
    {
        ["normal"] = TimestepChoice.ModelDefault,
        ["karras"] = TimestepChoice.Karras,
        ["simple"] = TimestepChoice.Trailing,
        ["ddim_uniform"] = TimestepChoice.Leading,
        ["sgm_uniform"] = TimestepChoice.Trailing,
    };

    /// <summary>The order ComfyUI lists them in.</summary>
    public static readonly IReadOnlyList<string> SamplerNames = ["euler", "euler_ancestral", "lms", "dpmpp_2m", "ddpm", "ddim", "uni_pc"];
    public static readonly IReadOnlyList<string> SchedulerNames = ["normal", "karras", "simple", "ddim_uniform", "sgm_uniform"];

    /// <summary>The choice for a pair; null with a reason when the pair is not available.</summary>
    public static SamplerChoice? Resolve(string samplerName, string schedulerName, out string? error)
    {
        error = null;
        if (!Samplers.TryGetValue(samplerName, out var ours)) { error = $"sampler_name '{samplerName}' is not supported"; return null; }
        if (!Schedulers.TryGetValue(schedulerName, out var t)) { error = $"scheduler '{schedulerName}' is not supported"; return null; }
        var choice = new SamplerChoice(ours, t);
        if (!choice.IsSupported) { error = $"scheduler '{schedulerName}' is not available with sampler_name '{samplerName}'"; return null; }
        return choice;
    }
}
