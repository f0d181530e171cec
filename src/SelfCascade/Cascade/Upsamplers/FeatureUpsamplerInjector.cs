using SelfCascade.Models.Unet;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Cascade.Upsamplers;

/// <summary>Settings of <see cref="FeatureUpsamplerInjector"/>.</summary>
public sealed record FeatureUpsamplerInjectorOptions
{
    /// <summary>
    /// The released code's switch: steps with t ≤ this value run the plain UNet (released: upsamplers only while
    /// t &gt; 100). Null (default) = upsamplers at every step.
    /// </summary>
    public double? PlainUNetAtOrBelowTimestep { get; init; }

    /// <summary>Restrict injection to these points (each must be in the stage's set); null = all of the set's points.</summary>
    public IReadOnlyList<InjectionPoint>? Points { get; init; }
}

/// <summary>
/// The tuned Self-Cascade (paper §4.2) as a <see cref="IStageFeatureInjector"/>: for stage r ≥ 1, the set for the
/// adaptation r-1 → r adds φ(h_lr, emb) to the hidden state leaving each of its points. Set i serves stage i+1; the
/// last set also serves any later stage (a single set serves every stage). The low-res branch reads the previous
/// stage's clean latent (scaled once by the VAE factor, never again; not passed through scale_model_input),
/// repeated for the CFG halves, in the UNet's dtype.
/// </summary>
public sealed class FeatureUpsamplerInjector : IStageFeatureInjector, IDisposable
{
    private readonly IReadOnlyList<FeatureUpsamplerSet> _sets;
    private readonly bool _ownsSets;

    public FeatureUpsamplerInjectorOptions Options { get; }

    /// <param name="setsByStage">Set i is used for stage i+1 (the adaptation i → i+1).</param>
    /// <param name="ownsSets">Dispose the sets with the injector.</param>
    public FeatureUpsamplerInjector(IReadOnlyList<FeatureUpsamplerSet> setsByStage, FeatureUpsamplerInjectorOptions? options = null, bool ownsSets = false)
    {
        if (setsByStage.Count == 0) throw new ArgumentException("at least one upsampler set is needed", nameof(setsByStage));
        _sets = setsByStage.ToList();
        _ownsSets = ownsSets;
        Options = options ?? new FeatureUpsamplerInjectorOptions();
    }

    public FeatureUpsamplerInjector(FeatureUpsamplerSet set, FeatureUpsamplerInjectorOptions? options = null, bool ownsSets = false)
        : this([set], options, ownsSets) { }

    /// <summary>
    /// Loads one checkpoint folder per adaptation (the first for stage 1, …) for <paramref name="unet"/>, on its
    /// device and in its dtype (<paramref name="dtype"/> overrides). Throws <see cref="UpsamplerCheckpointException"/>.
    /// </summary>
    public static FeatureUpsamplerInjector FromCheckpoints(IEnumerable<string> dirs, UNet2DConditionModel unet,
        FeatureUpsamplerInjectorOptions? options = null, ScalarType? dtype = null)
    {
        var sets = new List<FeatureUpsamplerSet>();
        try
        {
            foreach (var dir in dirs) sets.Add(FeatureUpsamplerSet.Load(dir, unet, unet.Device, dtype ?? unet.DType));
            if (sets.Count == 0) throw new ArgumentException("no upsampler checkpoint given", nameof(dirs));
            return new FeatureUpsamplerInjector(sets, options, ownsSets: true);
        }
        catch
        {
            foreach (var s in sets) s.Dispose();
            throw;
        }
    }

    public IReadOnlyList<FeatureUpsamplerSet> Sets => _sets;

    /// <summary>The set serving stage <paramref name="stageIndex"/> (≥ 1).</summary>
    public FeatureUpsamplerSet SetForStage(int stageIndex)
    {
        if (stageIndex < 1) throw new ArgumentOutOfRangeException(nameof(stageIndex), "stage 0 has no upsamplers");
        return _sets[Math.Min(stageIndex - 1, _sets.Count - 1)];
    }

    public IStageInjection? BeginStage(CascadeStageContext context)
    {
        var set = SetForStage(context.StageIndex);
        var problems = set.Config.Incompatibilities(context.Unet.Config);
        if (problems.Count > 0)
            throw new InvalidOperationException($"upsampler set {Math.Min(context.StageIndex, _sets.Count)} (for stage {context.StageIndex}) does not fit this UNet: {string.Join("; ", problems)}");
        Tensor lowRes;
        using (var scope = torch.NewDisposeScope())
        {
            var lr = context.LowResLatent.detach();
            if (context.CfgMultiplier > 1) lr = lr.repeat(context.CfgMultiplier, 1, 1, 1);
            lowRes = lr.MoveToOuterDisposeScope();
        }
        try
        {
            // The hook aliases what it keeps: the context's text states are disposed by the cascade after this call.
            var hook = set.CreateHook(context.Unet, lowRes, context.EncoderHiddenStates, Options.Points);
            return new Stage(hook, Options.PlainUNetAtOrBelowTimestep);
        }
        finally
        {
            lowRes.Dispose();
        }
    }

    private sealed class Stage(FeatureUpsamplerHook hook, double? plainAtOrBelow) : IStageInjection
    {
        public UNetForwardOptions? OptionsForStep(double timestep) =>
            plainAtOrBelow is double limit && timestep <= limit ? null : hook.Options;

        public void Dispose() => hook.Dispose();
    }

    public void Dispose()
    {
        if (!_ownsSets) return;
        foreach (var s in _sets) s.Dispose();
    }
}
