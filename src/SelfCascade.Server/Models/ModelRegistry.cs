using SelfCascade.Checkpoints;
using SelfCascade.Pipelines;
using SelfCascade.Schedulers;
using SelfCascade.Server.Jobs;
using static TorchSharp.torch;

namespace SelfCascade.Server.Models;

/// <summary>A model the server offers: a name for requests and where it is loaded from (never shown to clients).</summary>
public sealed record ModelSpec(string Name, string Path);

/// <summary>A served model as clients see it.</summary>
public sealed record ServedModelInfo(string Name, string Family, int NativeSize, int VaeScaleFactor, bool Loaded, long? ResidentBytes,
    int DefaultSteps, double DefaultGuidance, double DefaultPivotStrength);

/// <summary>
/// The served models: geometry read from configs at start (requests are validated without loading weights),
/// pipelines loaded lazily on first use and kept resident up to a memory budget, least recently used unloaded first.
/// <see cref="Acquire"/> and the pipelines it returns belong to the job worker thread (one job per device at a time).
/// </summary>
public sealed class ModelRegistry : IDisposable
{
    private readonly Dictionary<string, Entry> _models = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];
    private readonly PipelineOptions _pipelineOptions;
    private readonly long _budgetBytes;
    private readonly Func<string, PipelineOptions, StableDiffusionPipeline> _load;
    private readonly object _lock = new();
    private long _useClock;

    /// <param name="budgetBytes">Resident weights allowed at once; a model over budget on its own still loads (alone).</param>
    /// <param name="load">The loader (default <see cref="StableDiffusionPipeline.FromPretrained"/>); tests count loads with it.</param>
    public ModelRegistry(IReadOnlyList<ModelSpec> models, PipelineOptions pipelineOptions, long budgetBytes,
        Func<string, PipelineOptions, StableDiffusionPipeline>? load = null)
    {
        if (models.Count == 0) throw new ArgumentException("no model to serve");
        _pipelineOptions = pipelineOptions;
        _budgetBytes = budgetBytes;
        _load = load ?? StableDiffusionPipeline.FromPretrained;
        foreach (var m in models)
        {
            if (string.IsNullOrWhiteSpace(m.Name)) throw new ArgumentException($"model '{m.Path}' has an empty name");
            if (_models.ContainsKey(m.Name)) throw new ArgumentException($"two models are named '{m.Name}' (name them: --model NAME=PATH)");
            var geometry = ModelGeometry.FromFolder(m.Path, pipelineOptions.DType ?? ScalarType.Float32);
            SchedulerConfig schedulerConfig;
            using (var components = ModelSource.OpenComponents(m.Path)) schedulerConfig = SchedulerConfig.FromJson(components.Config("scheduler"));
            _models[m.Name] = new Entry(m, geometry, schedulerConfig);
            _order.Add(m.Name);
        }
    }

    public IReadOnlyList<string> Names => _order;
    public string DefaultName => _order[0];
    public long BudgetBytes => _budgetBytes;

    /// <summary>Times a model's weights were loaded (unloads then reloads count again).</summary>
    public int LoadCount { get; private set; }

    /// <summary>The model a request names (null = default); 404 for an unknown name.</summary>
    public ModelSpec Resolve(string? name) => Get(name).Spec;

    public ModelGeometry Geometry(string? name) => Get(name).Geometry;

    public IReadOnlyList<ServedModelInfo> List()
    {
        lock (_lock)
            return _order.Select(n =>
            {
                var e = _models[n];
                var g = e.Geometry;
                return new ServedModelInfo(n, SelfCascade.IO.DiffusersModelFolder.FamilyName(g.Family), g.NativeSize, g.VaeScaleFactor,
                    e.Pipeline is not null, e.Pipeline is null ? null : e.Bytes, g.Defaults.Steps ?? ModelDefaults.DiffusersSteps,
                    g.DefaultGuidance, g.DefaultPivotStrength);
            }).ToList();
    }

    private Entry Get(string? name)
    {
        name = string.IsNullOrEmpty(name) ? DefaultName : name;
        return _models.TryGetValue(name, out var e) ? e
            : throw new JobRequestException($"unknown model '{Truncate(name)}'; served: {string.Join(", ", _order)}", 404);
    }

    private static string Truncate(string s) => s.Length <= 80 ? s : s[..80] + "...";

    /// <summary>
    /// The loaded pipeline for a model (loading it, after unloading least recently used ones until it fits the budget),
    /// with a fresh scheduler (the folder's, or <paramref name="scheduler"/> by CLI name), so no sampler state carries
    /// over between jobs. Worker thread only.
    /// </summary>
    public StableDiffusionPipeline Acquire(string? name, string? scheduler, out double loadSeconds)
    {
        var e = Get(name);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        if (e.Pipeline is null)
        {
            long estimate = EstimateBytes(e.Spec.Path);
            EvictFor(estimate, e);
            var pipe = _load(e.Spec.Path, _pipelineOptions);
            lock (_lock)
            {
                e.Pipeline = pipe;
                e.Bytes = ParameterBytes(pipe);
                LoadCount++;
            }
            EvictFor(0, e);
        }
        loadSeconds = sw.Elapsed.TotalSeconds;
        e.LastUse = Interlocked.Increment(ref _useClock);
        var p = e.Pipeline!;
        p.UseScheduler(scheduler is null ? SchedulerFactory.Create(e.SchedulerConfig) : SchedulerFactory.Create(scheduler, e.SchedulerConfig));
        return p;
    }

    /// <summary>Unloads least recently used models (not <paramref name="keep"/>) while resident + extra exceeds the budget.</summary>
    private void EvictFor(long extra, Entry keep)
    {
        while (true)
        {
            Entry? victim;
            lock (_lock)
            {
                long resident = _models.Values.Where(m => m.Pipeline is not null && m != keep).Sum(m => m.Bytes)
                    + (keep.Pipeline is not null ? keep.Bytes : 0);
                if (resident + extra <= _budgetBytes) return;
                victim = _models.Values.Where(m => m.Pipeline is not null && m != keep).MinBy(m => m.LastUse);
                if (victim is null) return;
                var pipe = victim.Pipeline!;
                victim.Pipeline = null;
                victim.Bytes = 0;
                pipe.Dispose();
            }
        }
    }

    /// <summary>Unloads a model now (worker thread; for tests and memory pressure).</summary>
    public void Unload(string name)
    {
        lock (_lock)
        {
            var e = Get(name);
            e.Pipeline?.Dispose();
            e.Pipeline = null;
            e.Bytes = 0;
        }
    }

    public static long ParameterBytes(StableDiffusionPipeline pipe)
    {
        long total = 0;
        var modules = new List<TorchSharp.torch.nn.Module> { pipe.Unet };
        if (pipe.Vae is not null) modules.Add(pipe.Vae);
        modules.AddRange(pipe.Prompts.TextEncoders);
        foreach (var m in modules)
            foreach (var p in m.parameters())
                total += p.numel() * p.element_size();
        return total;
    }

    /// <summary>Before loading: the weight files' total size (a close guess for the resident size at the same dtype).</summary>
    private static long EstimateBytes(string path)
    {
        try
        {
            if (File.Exists(path)) return new FileInfo(path).Length;
            return Directory.EnumerateFiles(path, "*.safetensors", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        }
        catch (IOException) { return 0; }
        catch (UnauthorizedAccessException) { return 0; }
    }

    public void Dispose()
    {
        lock (_lock)
            foreach (var e in _models.Values)
            {
                e.Pipeline?.Dispose();
                e.Pipeline = null;
            }
    }

    private sealed class Entry(ModelSpec spec, ModelGeometry geometry, SchedulerConfig schedulerConfig)
    {
        public ModelSpec Spec { get; } = spec;
        public ModelGeometry Geometry { get; } = geometry;
        public SchedulerConfig SchedulerConfig { get; } = schedulerConfig;
        public StableDiffusionPipeline? Pipeline { get; set; }
        public long Bytes { get; set; }
        public long LastUse { get; set; }
    }
}
