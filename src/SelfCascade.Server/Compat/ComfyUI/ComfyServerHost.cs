using System.Globalization;
using SelfCascade.Cascade;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using SelfCascade.Server.Jobs;
using SelfCascade.Server.Storage;

namespace SelfCascade.Server.Compat.ComfyUI;

/// <summary>
/// <see cref="IComfyHost"/> for one graph job: models from the registry (acquired once per run, with the folder's
/// scheduler), uploads from <see cref="ComfyInputStore"/>, and images saved into the job's folder as
/// "{prefix}_{counter:00000}_.png" (ComfyUI's names), subfolder = the prompt id, so /view finds them.
/// </summary>
public sealed class ComfyServerHost(CustomJobContext job, ComfyInputStore inputs) : IComfyHost
{
    private readonly Dictionary<string, StableDiffusionPipeline> _pipes = new(StringComparer.Ordinal);
    private int _counter;

    /// <summary>The files written, in order (the job record's images).</summary>
    public List<string> Saved { get; } = [];
    public int FirstWidth { get; private set; }
    public int FirstHeight { get; private set; }
    public double LoadSeconds { get; private set; }

    public StableDiffusionPipeline Pipeline(string checkpoint)
    {
        if (_pipes.TryGetValue(checkpoint, out var p)) return p;
        p = job.Models.Acquire(checkpoint, null, out double seconds);
        LoadSeconds += seconds;
        _pipes[checkpoint] = p;
        return p;
    }

    public RgbImage LoadInputImage(string name) =>
        RgbImage.Load(inputs.Find(name) ?? throw new FileNotFoundException($"input image '{name}' not found (upload it with /upload/image)"));

    public ComfyFileRef SaveImage(RgbImage image, string filenamePrefix, string type, IReadOnlyDictionary<string, string> pngText)
    {
        var prefix = new string(filenamePrefix.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_').ToArray());
        if (prefix.Length == 0) prefix = "ComfyUI";
        if (prefix.Length > 80) prefix = prefix[..80];
        if (type == "temp") prefix += "_temp";
        var name = $"{prefix}_{++_counter:00000}_.png";
        image.SavePng(job.Outputs.PathFor(job.JobId, name), pngText);
        Saved.Add(name);
        if (Saved.Count == 1) { FirstWidth = image.Width; FirstHeight = image.Height; }
        return new ComfyFileRef(name, job.JobId, type);
    }

    /// <summary>The served set's injector, built as generate --upsamplers builds it.</summary>
    public IStageFeatureInjector CreateUpsamplers(string name, StableDiffusionPipeline pipe) => job.Extras.CreateInjector(name, pipe)!;

    /// <summary>
    /// Merged into the resident weights for one sampler node: safe because one job per device runs at a time (this
    /// graph's worker thread owns the pipelines), and the executor disposes it before the node ends, also on failure
    /// or cancellation.
    /// </summary>
    public IDisposable ApplyLoras(StableDiffusionPipeline pipe, IReadOnlyList<SelfCascade.Server.Extras.LoraFileUseByName> loras) =>
        job.Extras.ApplyLoras(pipe, loras);

    public IReadOnlyDictionary<string, double> Timings(double total) => new Dictionary<string, double>
    {
        ["load"] = LoadSeconds,
        ["graph"] = total,
    };

    internal static string Stamp() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture);
}
