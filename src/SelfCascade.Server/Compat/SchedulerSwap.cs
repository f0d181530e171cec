using System.Runtime.CompilerServices;
using SelfCascade.Pipelines;
using SelfCascade.Schedulers;

namespace SelfCascade.Server.Compat;

/// <summary>
/// Runs a request with the scheduler a foreign sampler name maps to, then puts back the scheduler the pipeline had
/// (a resident model serves the next job as it was). The model's own scheduler config is remembered the first time
/// a pipeline passes here, so choices are always derived from it, never from a previous request's choice.
/// Callers hold the device's job slot: one job per pipeline at a time.
/// </summary>
public static class SchedulerSwap
{
    private static readonly ConditionalWeakTable<StableDiffusionPipeline, SchedulerConfig> Defaults = new();

    /// <summary>The scheduler config the pipeline was loaded with (remembered on first sight).</summary>
    public static SchedulerConfig ModelDefault(StableDiffusionPipeline pipe) => Defaults.GetValue(pipe, p => p.Scheduler.Config);

    /// <summary>Installs <paramref name="choice"/>'s scheduler; disposing the result restores the previous one.</summary>
    public static IDisposable Use(StableDiffusionPipeline pipe, SamplerChoice choice)
    {
        var modelDefault = ModelDefault(pipe);
        var previous = pipe.Scheduler.Config;
        pipe.UseScheduler(choice.Create(modelDefault));
        return new Restore(pipe, previous);
    }

    private sealed class Restore(StableDiffusionPipeline pipe, SchedulerConfig previous) : IDisposable
    {
        private bool _done;
        public void Dispose()
        {
            if (_done) return;
            _done = true;
            pipe.UseScheduler(SchedulerFactory.Create(previous));
        }
    }
}
