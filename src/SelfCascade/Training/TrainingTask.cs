using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Training;

/// <summary>A micro-batch: images (B, 3, S, S) fp32 in [-1, 1] on the CPU, captions after dropout, and the run's
/// sample indices they came from.</summary>
public sealed record TrainingBatch(Tensor Images, IReadOnlyList<string> Captions, IReadOnlyList<long> SampleIndices) : IDisposable
{
    public int Count => Captions.Count;
    public void Dispose() => Images.Dispose();
}

/// <summary>
/// What the shared <see cref="Trainer"/> trains: the trainable parameters (fp32 master weights), the frozen
/// networks (gradients off, never changed), the loss of a micro-batch, and hooks for EMA, previews and the final
/// export. Randomness a task needs per micro-batch comes from the generator the trainer passes (seeded from
/// (seed, micro-batch index)), so resuming is exact by construction.
/// </summary>
public abstract class TrainingTask : IDisposable
{
    /// <summary>Where the networks live; batches are moved here.</summary>
    public abstract Device Device { get; }

    /// <summary>Named trainable parameters, all fp32; the trainer turns their gradients on.</summary>
    public abstract IReadOnlyList<(string Name, Parameter Parameter)> TrainableParameters { get; }

    /// <summary>Networks that must stay as they are; the trainer turns their gradients off.</summary>
    public abstract IReadOnlyList<nn.Module> FrozenModules { get; }

    /// <summary>Settings that must be the same to resume exactly (image size, model shape, ...).</summary>
    public virtual IReadOnlyDictionary<string, string> Fingerprint => new Dictionary<string, string>();

    /// <summary>The scalar loss of one micro-batch, with its graph (the trainer calls backward).</summary>
    public abstract Tensor Loss(TrainingBatch batch, Generator generator);

    /// <summary>Called after each optimizer step (e.g. an EMA update).</summary>
    public virtual void AfterOptimizerStep(long step) { }

    /// <summary>Extra tensors to checkpoint (e.g. EMA weights), by group name, and scalar values.</summary>
    public virtual IReadOnlyDictionary<string, IEnumerable<KeyValuePair<string, Tensor>>> ExtraState() =>
        new Dictionary<string, IEnumerable<KeyValuePair<string, Tensor>>>();

    public virtual IReadOnlyDictionary<string, string> ExtraValues() => new Dictionary<string, string>();

    /// <summary>Restores what <see cref="ExtraState"/> and <see cref="ExtraValues"/> saved.</summary>
    public virtual void LoadExtraState(Checkpoint checkpoint) { }

    /// <summary>Called after each step (after logging); e.g. a preview every N steps. Returns true when it did work
    /// worth a progress report.</summary>
    public virtual bool OnStepEnd(long step, string outputDir) => false;

    /// <summary>Called once after the last step: write the trained result.</summary>
    public virtual void Finish(string outputDir) { }

    public virtual void Dispose() => GC.SuppressFinalize(this);
}
