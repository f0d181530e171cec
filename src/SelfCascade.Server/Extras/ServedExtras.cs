using System.Globalization;
using SelfCascade.Cascade.Upsamplers;
using SelfCascade.Checkpoints.Lora;
using SelfCascade.Pipelines;
using SelfCascade.Server.Jobs;

namespace SelfCascade.Server.Extras;

/// <summary>A served feature-upsampler set (`serve --upsamplers NAME=PATH[,PATH...]`): one checkpoint folder per upscaling stage.</summary>
public sealed record UpsamplerSpec(string Name, IReadOnlyList<string> Dirs);

/// <summary>A served LoRA file (`serve --lora NAME=FILE`).</summary>
public sealed record LoraSpec(string Name, string Path);

/// <summary>
/// A LoRA a job uses, by its served name, merged at <paramref name="Scale"/> (UNet and text encoders alike, as
/// `--lora FILE:SCALE`), or with another scale for the text encoder(s) (A1111's &lt;lora:NAME:TE:UNET&gt;).
/// </summary>
public sealed record LoraUse(string Name, double Scale)
{
    /// <summary>Null: <see cref="Scale"/>.</summary>
    public double? TextEncoderScale { get; init; }
    public double TextEncoder => TextEncoderScale ?? Scale;
}

/// <summary>
/// The server's table of feature-upsampler sets and LoRA files: name -> files, fixed at start-up and validated then
/// (every bad entry is an error naming it). Requests name entries, never paths, so no request can reach another file.
/// Applying them reuses the CLI's code paths: <see cref="FeatureUpsamplerInjector.FromCheckpoints"/> (generate
/// --upsamplers) and <see cref="LoraStack"/> (generate --lora).
/// </summary>
public sealed class ServedExtras
{
    /// <summary>Reserved: "no upsamplers" (the ComfyUI node's first choice).</summary>
    public const string NoUpsamplers = "none";
    public const int MaxNameLength = 100;
    /// <summary>LoRAs one job may stack.</summary>
    public const int MaxLorasPerJob = 16;

    private readonly Dictionary<string, UpsamplerSpec> _upsamplers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, LoraSpec> _loras = new(StringComparer.Ordinal);

    public static readonly ServedExtras None = new([], []);

    public ServedExtras(IReadOnlyList<UpsamplerSpec> upsamplers, IReadOnlyList<LoraSpec> loras)
    {
        foreach (var u in upsamplers)
        {
            CheckName(u.Name, "--upsamplers");
            if (u.Name == NoUpsamplers) throw new ArgumentException($"--upsamplers: the name '{NoUpsamplers}' is reserved (it means no upsamplers)");
            if (_upsamplers.ContainsKey(u.Name)) throw new ArgumentException($"--upsamplers: two sets are named '{u.Name}'");
            if (u.Dirs.Count == 0) throw new ArgumentException($"--upsamplers {u.Name}: no checkpoint folder given (NAME=PATH[,PATH...])");
            foreach (var dir in u.Dirs)
            {
                try
                {
                    FeatureUpsamplerSet.ReadConfig(dir);
                    var weights = Path.Combine(FeatureUpsamplerSet.ResolveCheckpointDir(dir), FeatureUpsamplerSet.WeightsFileName);
                    if (!File.Exists(weights)) throw new UpsamplerCheckpointException($"upsampler checkpoint {dir}: {FeatureUpsamplerSet.WeightsFileName} is missing");
                }
                catch (UpsamplerCheckpointException e)
                {
                    throw new ArgumentException($"--upsamplers {u.Name}: {e.Message}", e);
                }
            }
            _upsamplers[u.Name] = u with { Dirs = u.Dirs.ToList() };
        }
        foreach (var l in loras)
        {
            CheckName(l.Name, "--lora");
            if (_loras.ContainsKey(l.Name)) throw new ArgumentException($"--lora: two LoRAs are named '{l.Name}'");
            try
            {
                // LoRA files are small: read the whole file now so a broken one (or one with no LoRA layer: Load
                // throws) fails the start, not a job. Stray keys would fail every job (no --lora-lenient here).
                using var set = LoraSet.Load(l.Path);
                if (set.UnknownKeys.Count > 0)
                    throw new LoraException($"{l.Path}: {set.UnknownKeys.Count} key(s) belong to no LoRA layout: {string.Join(", ", set.UnknownKeys.Take(5))}");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or NotSupportedException)
            {
                throw new ArgumentException($"--lora {l.Name}: {e.Message}", e);
            }
            _loras[l.Name] = l;
        }
        UpsamplerNames = upsamplers.Select(u => u.Name).ToList();
        LoraNames = loras.Select(l => l.Name).ToList();
    }

    /// <summary>Served upsampler-set names, in the order given.</summary>
    public IReadOnlyList<string> UpsamplerNames { get; }
    /// <summary>Served LoRA names, in the order given.</summary>
    public IReadOnlyList<string> LoraNames { get; }

    /// <summary>Stages (checkpoint folders) of a served set.</summary>
    public int UpsamplerStages(string name) => ResolveUpsamplers(name).Dirs.Count;

    /// <summary>A name's entry; 400 with the served names for an unknown one.</summary>
    public UpsamplerSpec ResolveUpsamplers(string name) =>
        _upsamplers.TryGetValue(name, out var u) ? u
            : throw new JobRequestException($"unknown upsamplers '{Short(name)}'; served: {Known(UpsamplerNames)}");

    public LoraSpec ResolveLora(string name) =>
        _loras.TryGetValue(name, out var l) ? l
            : throw new JobRequestException($"unknown LoRA '{Short(name)}'; served: {Known(LoraNames)}");

    /// <summary>Checks a job's upsamplers and LoRAs by name and scale (400 on failure).</summary>
    public void Validate(string? upsamplers, IReadOnlyList<LoraUse> loras)
    {
        if (upsamplers is not null) ResolveUpsamplers(upsamplers);
        if (loras.Count > MaxLorasPerJob) throw new JobRequestException($"at most {MaxLorasPerJob} LoRAs per job (got {loras.Count})");
        foreach (var l in loras)
        {
            if (l.Name is null) throw new JobRequestException("a LoRA needs a name");
            ResolveLora(l.Name);
            foreach (var s in new[] { l.Scale, l.TextEncoder })
                if (!double.IsFinite(s) || Math.Abs(s) > 100) throw new JobRequestException($"LoRA '{Short(l.Name)}': scale {s} must be finite and within ±100");
        }
    }

    /// <summary>
    /// Merges the LoRAs into the pipeline's resident weights, as generate --lora does; disposing the result restores
    /// them bit for bit. Safe on a shared pipeline because one job per device runs at a time (the job worker thread owns
    /// the pipelines, <see cref="Models.ModelRegistry.Acquire"/>) and the caller disposes it before the job ends,
    /// also on failure or cancellation.
    /// </summary>
    public LoraStack ApplyLoras(StableDiffusionPipeline pipe, IEnumerable<LoraFileUseByName> loras) =>
        LoraStack.Apply(pipe, loras.Select(l => new LoraFileUse(ResolveLora(l.Name).Path, l.UnetScale, l.TextEncoderScale)).ToList());

    public LoraStack ApplyLoras(StableDiffusionPipeline pipe, IReadOnlyList<LoraUse> loras) =>
        ApplyLoras(pipe, loras.Select(l => new LoraFileUseByName(l.Name, l.Scale, l.TextEncoder)));

    /// <summary>The tuned cascade's injector for a served set, as generate --upsamplers builds it (null for null); the caller disposes it.</summary>
    public FeatureUpsamplerInjector? CreateInjector(string? name, StableDiffusionPipeline pipe) => name is null ? null
        : FeatureUpsamplerInjector.FromCheckpoints(ResolveUpsamplers(name).Dirs, pipe.Unet, new FeatureUpsamplerInjectorOptions(), pipe.DType);

    /// <summary>"name:scale, ..." as the PNG metadata and job records show it.</summary>
    public static string Describe(IEnumerable<LoraUse> loras) =>
        string.Join(", ", loras.Select(l => l.TextEncoder == l.Scale ? $"{l.Name}:{Num(l.Scale)}" : $"{l.Name}:unet={Num(l.Scale)}:te={Num(l.TextEncoder)}"));

    private static string Num(double d) => d.ToString(CultureInfo.InvariantCulture);

    /// <summary>NAME=VALUE as the serve options take it (the name before the first '=').</summary>
    public static (string Name, string Value) SplitNameValue(string spec, string option)
    {
        int eq = spec.IndexOf('=');
        if (eq <= 0 || eq == spec.Length - 1) throw new ArgumentException($"{option} '{spec}': expected NAME=PATH");
        return (spec[..eq].Trim(), spec[(eq + 1)..].Trim());
    }

    /// <summary>Names are what requests (and A1111's &lt;lora:NAME:SCALE&gt;) carry: letters, digits, '-', '_', '.', at most 100.</summary>
    private static void CheckName(string name, string option)
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxNameLength || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            throw new ArgumentException($"{option}: name '{Short(name ?? "")}' must be 1-{MaxNameLength} letters, digits, '-', '_' or '.'");
    }

    private static string Known(IReadOnlyList<string> names) => names.Count == 0 ? "(none)" : string.Join(", ", names);

    private static string Short(string s) => s.Length <= 40 ? s : s[..40] + "...";
}

/// <summary>A served LoRA by name with separate UNet and text-encoder scales (ComfyUI's LoraLoader).</summary>
public sealed record LoraFileUseByName(string Name, double UnetScale, double TextEncoderScale);
