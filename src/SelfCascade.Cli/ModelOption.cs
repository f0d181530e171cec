using System.CommandLine;
using System.Globalization;
using SelfCascade.Checkpoints.Hub;

namespace SelfCascade.Cli;

/// <summary>
/// `--model DIR|org/name[@rev]`: a diffusers folder, or a Hugging Face hub id resolved through the standard hub
/// cache (downloaded when missing); without it, the embedded emoji base model shipped with SelfCascade.
/// </summary>
public static class ModelOption
{
    /// <summary>The embedded model's folder name (models/ in the repository, copied beside the executable).</summary>
    public const string EmbeddedName = "emoji-base";

    public static Option<string?> Create() => new("--model")
    {
        Description = $"A diffusers Stable Diffusion folder, a single-file checkpoint (.safetensors/.ckpt, original layout) or a hub id org/name[@revision] (default: the embedded '{EmbeddedName}' model, offline)",
    };

    /// <summary>
    /// The local path for <paramref name="model"/>: an existing path as given; else a hub id
    /// (<see cref="HubModelResolver"/>: HF_HUB_CACHE/HF_HOME, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE honoured); else
    /// the value itself (the loader names what is wrong with it).
    /// </summary>
    public static string Resolve(string? model, CliConsole? console = null, string? variant = null, bool offline = false)
    {
        if (!string.IsNullOrWhiteSpace(model))
        {
            if (!File.Exists(model) && !Directory.Exists(model) && HubModelId.LooksLikeHubId(model))
                return ResolveHub(model, console, variant, offline).Path;
            return model;
        }
        return EmbeddedModelDir() ?? throw new ArgumentException(
            $"no --model given and the embedded model 'models/{EmbeddedName}' was not found beside the program or in the checkout");
    }

    /// <summary>A hub id to its snapshot folder (or single file), with per-file progress on stderr.</summary>
    public static HubResolution ResolveHub(string id, CliConsole? console, string? variant, bool offline)
    {
        var progress = console?.Progress<HubDownloadProgress>(d => (d.Fraction, d.ToString()));
        HubResolution r;
        try { r = HubModelResolver.Resolve(id, new HubOptions { Variant = variant, Offline = offline, Progress = progress }, console?.Cancellation ?? default); }
        catch (HubException e) when (e.Kind is HubErrorKind.NotFound or HubErrorKind.OfflineMiss or HubErrorKind.Unauthorized or HubErrorKind.Transfer)
        {
            // A mistyped local folder also looks like org/name: say that it was tried as a path first.
            throw new HubException(e.Kind, $"{e.Message} ('{id}' is not a local file or folder either)", e);
        }
        if (r.FilesDownloaded > 0)
            console?.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"hub: {r.Id} ({r.Commit[..10]}): {r.FilesDownloaded} file(s), {r.BytesDownloaded / 1048576.0:F1} MiB downloaded into {r.Path}"));
        return r;
    }

    /// <summary>models/emoji-base beside the executable (published) or in a folder above it (a checkout's build).</summary>
    public static string? EmbeddedModelDir()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "models", EmbeddedName);
            if (File.Exists(Path.Combine(candidate, "model_index.json"))) return candidate;
        }
        return null;
    }
}

/// <summary>`--variant` and `--offline` for commands taking `--model` (hub ids and variant weight files).</summary>
public sealed class HubCliOptions
{
    public Option<string?> Variant { get; } = new("--variant")
    {
        Description = "Weight variant, e.g. fp16: loads *.fp16.safetensors where a component has them (and downloads only those for hub ids)",
    };

    public Option<bool> Offline { get; } = new("--offline") { Description = "Hub ids: the local hub cache only, no network (as HF_HUB_OFFLINE=1)" };

    public void AddTo(Command command)
    {
        command.Add(Variant);
        command.Add(Offline);
    }

    public string Resolve(ParseResult p, Option<string?> model, CliConsole console) =>
        ModelOption.Resolve(p.GetValue(model), console, p.GetValue(Variant), p.GetValue(Offline));
}
