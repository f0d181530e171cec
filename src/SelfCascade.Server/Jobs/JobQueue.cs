using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading.Channels;
using SelfCascade.Server.Models;
using SelfCascade.Server.Storage;

namespace SelfCascade.Server.Jobs;

/// <summary>Limits and timing of the job engine.</summary>
public sealed class JobQueueOptions
{
    /// <summary>Jobs allowed to wait (the running one not counted); one more is refused (HTTP 429).</summary>
    public int MaxQueue { get; init; } = 16;
    /// <summary>Finished jobs kept in memory (events replayable); older ones are served from the store.</summary>
    public int FinishedKeptInMemory { get; init; } = 256;
    /// <summary>On shutdown, how long a running job may take to finish before it is cancelled.</summary>
    public TimeSpan ShutdownGrace { get; init; } = TimeSpan.Zero;
    /// <summary>What a request may ask for.</summary>
    public JobLimits Limits { get; init; } = new();
    /// <summary>Served upsampler sets and LoRAs (requests name them).</summary>
    public SelfCascade.Server.Extras.ServedExtras Extras { get; init; } = SelfCascade.Server.Extras.ServedExtras.None;
}

/// <summary>What <see cref="JobQueue.Cancel"/> did.</summary>
public enum CancelOutcome
{
    NotFound,
    /// <summary>It was queued: removed and marked cancelled.</summary>
    Cancelled,
    /// <summary>It is running: it stops within one denoising step (the final event says so).</summary>
    Requested,
    /// <summary>It had already ended; nothing changed.</summary>
    AlreadyFinished,
}

/// <summary>
/// The job engine: one bounded queue and one worker thread per device, so one job runs at a time. Endpoint groups
/// call <see cref="Submit"/>, <see cref="Get"/>, <see cref="Cancel"/>, <see cref="Subscribe"/> (a job's events,
/// replayed from the start, then live) or <see cref="EventPublished"/> (every job's events). Records go to the
/// <see cref="JobStore"/> on accept, start and end; images to the <see cref="OutputStore"/>. Thread-safe.
/// </summary>
public sealed class JobQueue : IDisposable
{
    private readonly ModelRegistry _models;
    private readonly JobStore _store;
    private readonly OutputStore _outputs;
    private readonly JobQueueOptions _options;
    private readonly object _lock = new();
    private readonly LinkedList<JobEntry> _pending = new();
    private readonly Dictionary<string, JobEntry> _live = new(StringComparer.Ordinal);
    private readonly Queue<string> _finishedOrder = new();
    private readonly SemaphoreSlim _signal = new(0);
    private readonly Thread _worker;
    private readonly CancellationTokenSource _stop = new();
    private JobEntry? _running;
    private long _sequence;
    private bool _stopping;
    private double _recentSeconds = 5;

    public JobQueue(ModelRegistry models, JobStore store, OutputStore outputs, JobQueueOptions? options = null)
    {
        _models = models;
        _store = store;
        _outputs = outputs;
        _options = options ?? new JobQueueOptions();
        _worker = new Thread(WorkerLoop) { Name = "selfcascade-jobs", IsBackground = true };
        _worker.Start();
    }

    public ModelRegistry Models => _models;
    public OutputStore Outputs => _outputs;
    public JobLimits Limits => _options.Limits;
    public SelfCascade.Server.Extras.ServedExtras Extras => _options.Extras;

    /// <summary>
    /// Every job's events as they happen, on the thread that made them (the worker, or a request thread for
    /// queued/cancelled). Handlers must be quick and must not throw (ComfyUI's /ws, A1111's progress).
    /// </summary>
    public event Action<JobEvent>? EventPublished;

    public int QueuedCount { get { lock (_lock) return _pending.Count; } }

    /// <summary>The running job's record (with its latest progress in <see cref="LatestProgress"/>), or null.</summary>
    public JobInfo? Running { get { lock (_lock) return _running?.Info; } }

    /// <summary>The latest progress event of a live job (null when none or unknown).</summary>
    public JobEvent? LatestProgress(string id)
    {
        lock (_lock) return _live.TryGetValue(id, out var e) ? e.LastProgress : null;
    }

    /// <summary>
    /// Validates and queues a job. Throws <see cref="JobRequestException"/> (400/404) for a request that cannot run,
    /// <see cref="QueueFullException"/> (429) when --max-queue jobs wait, <see cref="ServerStoppingException"/> (503).
    /// </summary>
    public JobInfo Submit(JobRequest request)
    {
        var model = _models.Resolve(request.Model);
        JobValidation.Validate(request, _models.Geometry(model.Name), _options.Limits);
        if (request.Kind != JobKind.Custom) _options.Extras.Validate(request.Upsamplers, request.Loras);
        var now = DateTimeOffset.UtcNow;
        var id = Guid.NewGuid().ToString("D");
        var info = new JobInfo
        {
            Id = id, Status = JobStatus.Queued, Kind = KindName(request), Model = model.Name,
            Origin = request.Origin, ParametersJson = WithExtras(request.ParametersJson ?? Summary(request, model.Name), request), CreatedAt = now,
            Seed = request.Generation.Seed,
        };
        var entry = new JobEntry(request, info);
        lock (_lock)
        {
            if (_stopping) throw new ServerStoppingException();
            if (_pending.Count >= _options.MaxQueue)
                throw new QueueFullException(_options.MaxQueue, Math.Clamp((int)Math.Ceiling(_recentSeconds * Math.Max(1, _pending.Count)), 1, 3600));
            _store.Insert(info);
            _pending.AddLast(entry);
            _live[id] = entry;
            Publish(entry, new JobEvent { Sequence = 0, JobId = id, Type = JobEventTypes.Queued, Time = now });
        }
        _signal.Release();
        return WithPosition(info);
    }

    private static string KindName(JobRequest r) => r.Kind switch
    {
        JobKind.Upscale => "upscale",
        JobKind.Custom => r.CustomKind ?? "custom",
        _ => "txt2img",
    };

    /// <summary>A job's record (queue position while queued); null for an unknown id.</summary>
    public JobInfo? Get(string id)
    {
        lock (_lock)
            if (_live.TryGetValue(id, out var e)) return WithPositionLocked(e.Info);
        return OutputStore.IsValidJobId(id) ? _store.Get(id) : null;
    }

    /// <summary>Newest first, from the store (live records are written there too).</summary>
    public IReadOnlyList<JobInfo> List(int limit = 50, int offset = 0, JobStatus? status = null)
    {
        var list = _store.List(Math.Clamp(limit, 1, 1000), Math.Max(0, offset), status);
        lock (_lock) return list.Select(j => _live.TryGetValue(j.Id, out var e) ? WithPositionLocked(e.Info) : j).ToList();
    }

    /// <summary>The queued jobs in order (next first) and the running one.</summary>
    public (JobInfo? Running, IReadOnlyList<JobInfo> Queued) Snapshot()
    {
        lock (_lock) return (_running?.Info, _pending.Select(e => WithPositionLocked(e.Info)).ToList());
    }

    public CancelOutcome Cancel(string id)
    {
        lock (_lock)
        {
            if (!_live.TryGetValue(id, out var e))
                return OutputStore.IsValidJobId(id) && _store.Get(id) is not null ? CancelOutcome.AlreadyFinished : CancelOutcome.NotFound;
            if (e.Info.Status.IsFinal()) return CancelOutcome.AlreadyFinished;
            if (e.Info.Status == JobStatus.Queued)
            {
                _pending.Remove(e);
                FinishLocked(e, JobStatus.Cancelled, "cancelled before it started");
                return CancelOutcome.Cancelled;
            }
            e.CancelReason ??= "cancelled while running";
            e.Cancellation.Cancel();
            return CancelOutcome.Requested;
        }
    }

    /// <summary>Cancels the running job and every queued one (ComfyUI/A1111 "interrupt" cancels the running one only: use <see cref="Cancel"/>).</summary>
    public int CancelAll()
    {
        List<string> ids;
        lock (_lock) ids = [.. _pending.Select(e => e.Info.Id), .. _running is null ? Array.Empty<string>() : [_running.Info.Id]];
        return ids.Count(id => Cancel(id) is CancelOutcome.Cancelled or CancelOutcome.Requested);
    }

    /// <summary>
    /// A job's events: everything so far (progress and previews collapsed to the latest), then live ones until the
    /// final event. A job no longer in memory yields one event from its stored record. Unknown id: nothing.
    /// </summary>
    public async IAsyncEnumerable<JobEvent> Subscribe(string id, [EnumeratorCancellation] CancellationToken ct = default)
    {
        Channel<JobEvent>? channel = null;
        List<JobEvent> replay;
        JobEntry? entry;
        lock (_lock)
        {
            _live.TryGetValue(id, out entry);
            if (entry is not null)
                lock (entry)
                {
                    replay = entry.Replay();
                    if (!entry.Info.Status.IsFinal())
                    {
                        channel = Channel.CreateBounded<JobEvent>(new BoundedChannelOptions(512) { FullMode = BoundedChannelFullMode.DropOldest });
                        entry.Subscribers.Add(channel);
                    }
                }
            else replay = [];
        }
        if (entry is null)
        {
            var stored = OutputStore.IsValidJobId(id) ? _store.Get(id) : null;
            if (stored is not null)
                yield return new JobEvent
                {
                    Sequence = 0, JobId = id, Type = JobEventTypes.ForStatus(stored.Status), Time = stored.FinishedAt ?? stored.CreatedAt,
                    Message = stored.Error, Job = stored,
                };
            yield break;
        }
        try
        {
            long last = 0;
            foreach (var ev in replay)
            {
                last = ev.Sequence;
                yield return ev;
            }
            if (channel is null) yield break;
            await foreach (var ev in channel.Reader.ReadAllAsync(ct))
            {
                if (ev.Sequence <= last) continue;
                yield return ev;
                if (ev.IsFinal) yield break;
            }
        }
        finally
        {
            if (channel is not null) lock (entry) entry.Subscribers.Remove(channel);
        }
    }

    /// <summary>
    /// Stops taking jobs, cancels the queued ones, lets the running one finish within <see cref="JobQueueOptions.ShutdownGrace"/>
    /// then cancels it (it stops within a denoising step), and waits for its state to be written.
    /// </summary>
    public async Task ShutdownAsync(CancellationToken ct = default)
    {
        JobEntry? running;
        lock (_lock)
        {
            if (_stopping && !_worker.IsAlive) return;
            _stopping = true;
            foreach (var e in _pending.ToList()) FinishLocked(e, JobStatus.Cancelled, "cancelled: the server shut down before it started");
            _pending.Clear();
            running = _running;
        }
        if (running is not null && _options.ShutdownGrace > TimeSpan.Zero)
            await Task.WhenAny(running.Finished.Task, Task.Delay(_options.ShutdownGrace, ct)).ConfigureAwait(false);
        lock (_lock)
            if (_running is { } r && !r.Info.Status.IsFinal())
            {
                r.CancelReason = "cancelled: the server shut down";
                r.Cancellation.Cancel();
            }
        _stop.Cancel();
        _signal.Release();
        await Task.Run(() => _worker.Join(TimeSpan.FromMinutes(2)), CancellationToken.None).ConfigureAwait(false);
    }

    public void Dispose()
    {
        ShutdownAsync().GetAwaiter().GetResult();
        _signal.Dispose();
        _stop.Dispose();
    }

    private void WorkerLoop()
    {
        while (true)
        {
            try { _signal.Wait(_stop.Token); }
            catch (OperationCanceledException) { return; }
            JobEntry? entry;
            lock (_lock)
            {
                if (_pending.First is null) continue;
                entry = _pending.First.Value;
                _pending.RemoveFirst();
                _running = entry;
                entry.Info = entry.Info with { Status = JobStatus.Running, StartedAt = DateTimeOffset.UtcNow };
                _store.Update(entry.Info);
                Publish(entry, new JobEvent { Sequence = 0, JobId = entry.Info.Id, Type = JobEventTypes.Started, Time = entry.Info.StartedAt!.Value });
            }
            var sw = System.Diagnostics.Stopwatch.StartNew();
            JobStatus status;
            string? error = null;
            JobRunner.Outcome? outcome = null;
            try
            {
                outcome = JobRunner.Run(entry, _models, _options.Extras, _outputs, ev => { lock (_lock) Publish(entry, ev); }, entry.Cancellation.Token);
                status = JobStatus.Done;
            }
            catch (Exception e) when (IsCancellation(e) && entry.Cancellation.IsCancellationRequested)
            {
                status = JobStatus.Cancelled;
                error = entry.CancelReason ?? "cancelled";
            }
            catch (Exception e)
            {
                status = JobStatus.Failed;
                error = OneLine(e);
            }
            lock (_lock)
            {
                if (outcome is not null)
                    entry.Info = entry.Info with
                    {
                        Seed = outcome.Seed, Width = outcome.Width, Height = outcome.Height, Images = outcome.Images, StageImages = outcome.StageImages,
                        Stages = outcome.Stages, Timings = outcome.Timings,
                    };
                else if (entry.StageFiles.Count > 0) entry.Info = entry.Info with { StageImages = [.. entry.StageFiles] };
                _running = null;
                FinishLocked(entry, status, error);
                _recentSeconds = 0.7 * _recentSeconds + 0.3 * Math.Max(0.1, sw.Elapsed.TotalSeconds);
            }
        }
    }

    private static bool IsCancellation(Exception e) =>
        e is OperationCanceledException || e.InnerException is OperationCanceledException;

    private static string OneLine(Exception e)
    {
        var msg = e.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? e.GetType().Name;
        return msg.Length > 500 ? msg[..500] + "..." : msg;
    }

    private void FinishLocked(JobEntry e, JobStatus status, string? error)
    {
        var now = DateTimeOffset.UtcNow;
        e.Info = e.Info with { Status = status, Error = error, FinishedAt = now };
        try { _store.Update(e.Info); }
        catch (Exception ex) when (ex is Microsoft.Data.Sqlite.SqliteException or IOException or InvalidOperationException)
        {
            // The record stays in memory; the next start marks the stored row interrupted.
            e.Info = e.Info with { Error = (error is null ? "" : error + "; ") + "record not saved: " + OneLine(ex) };
        }
        Publish(e, new JobEvent { Sequence = 0, JobId = e.Info.Id, Type = JobEventTypes.ForStatus(status), Time = now, Message = error, Job = e.Info });
        lock (e) e.Release();
        e.Finished.TrySetResult();
        _finishedOrder.Enqueue(e.Info.Id);
        while (_finishedOrder.Count > _options.FinishedKeptInMemory) _live.Remove(_finishedOrder.Dequeue());
    }

    /// <summary>Numbers and records an event, then hands it to the job's subscribers and the global handlers. Under _lock.</summary>
    private void Publish(JobEntry entry, JobEvent ev)
    {
        ev = ev with { Sequence = ++_sequence };
        lock (entry)
        {
            entry.Record(ev);
            foreach (var ch in entry.Subscribers)
            {
                ch.Writer.TryWrite(ev);
                if (ev.IsFinal) ch.Writer.TryComplete();
            }
        }
        try { EventPublished?.Invoke(ev); }
        catch (Exception) { /* a listener's failure must not stop the job engine */ }
    }

    private JobInfo WithPosition(JobInfo info) { lock (_lock) return WithPositionLocked(info); }

    private JobInfo WithPositionLocked(JobInfo info)
    {
        if (info.Status != JobStatus.Queued) return info;
        int i = 0;
        foreach (var e in _pending)
        {
            if (e.Info.Id == info.Id) return info with { QueuePosition = i };
            i++;
        }
        return info;
    }

    /// <summary>The record names the served upsamplers and LoRAs a job uses, whatever API submitted it.</summary>
    private static string WithExtras(string parametersJson, JobRequest r)
    {
        if (r.Upsamplers is null && r.Loras.Count == 0) return parametersJson;
        if (System.Text.Json.Nodes.JsonNode.Parse(parametersJson) is not System.Text.Json.Nodes.JsonObject o) return parametersJson;
        if (r.Upsamplers is not null) o["upsamplers"] = r.Upsamplers;
        if (r.Loras.Count > 0)
            o["loras"] = new System.Text.Json.Nodes.JsonArray(r.Loras.Select(l =>
                {
                var lo = new System.Text.Json.Nodes.JsonObject { ["name"] = l.Name, ["scale"] = l.Scale };
                if (l.TextEncoder != l.Scale) lo["text_encoder_scale"] = l.TextEncoder;
                return (System.Text.Json.Nodes.JsonNode?)lo;
            }).ToArray());
        return o.ToJsonString();
    }

    private static string Summary(JobRequest r, string model)
    {
        var g = r.Generation;
        return JsonSerializer.Serialize(new
        {
            kind = r.Kind == JobKind.Upscale ? "upscale" : "txt2img", model, prompt = g.Prompt, negative_prompt = g.NegativePrompt, seed = g.Seed,
            width = g.Width, height = g.Height, steps = r.UseModelDefaultSteps ? (int?)null : g.Steps, guidance = g.Guidance, num_images = g.NumImages,
            method = r.Method?.ToString(), scheduler = r.Scheduler, pivot_strength = r.PivotStrength,
            base_size = r.BaseSize is { } b ? $"{b.Width}x{b.Height}" : null, scale = r.Kind == JobKind.Upscale ? r.Scale : (int?)null,
        }, JobStore.Json);
    }
}

/// <summary>A job in memory: request, record, cancellation, event log, subscribers.</summary>
internal sealed class JobEntry(JobRequest request, JobInfo info)
{
    /// <summary>Null once the job is final (<see cref="Release"/>): an upscale input is not kept in memory.</summary>
    public JobRequest? Request { get; private set; } = request;
    public JobInfo Info { get; set; } = info;
    public CancellationTokenSource Cancellation { get; } = new();
    public string? CancelReason { get; set; }
    public TaskCompletionSource Finished { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public List<Channel<JobEvent>> Subscribers { get; } = [];
    public List<string> StageFiles { get; } = [];
    public JobEvent? LastProgress { get; private set; }
    private readonly List<JobEvent> _milestones = [];
    private JobEvent? _lastPreview;

    /// <summary>Keeps milestones (queued, started, stage images, final) and only the latest progress and preview.</summary>
    public void Record(JobEvent ev)
    {
        switch (ev.Type)
        {
            case JobEventTypes.Progress: LastProgress = ev; break;
            case JobEventTypes.Preview: _lastPreview = ev; break;
            default: _milestones.Add(ev); break;
        }
    }

    /// <summary>
    /// When the job is final: drops the request (upscale input image) and the image bytes of recorded events (stage
    /// images stay on disk, their events keep the file name), so the finished jobs kept in memory hold no images.
    /// </summary>
    public void Release()
    {
        Request = null;
        _lastPreview = null;
        for (int i = 0; i < _milestones.Count; i++)
            if (_milestones[i].Png is not null) _milestones[i] = _milestones[i] with { Png = null };
    }

    public List<JobEvent> Replay()
    {
        var list = new List<JobEvent>(_milestones);
        if (LastProgress is not null) list.Add(LastProgress);
        if (_lastPreview is not null) list.Add(_lastPreview);
        list.Sort((a, b) => a.Sequence.CompareTo(b.Sequence));
        return list;
    }
}
