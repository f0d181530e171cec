using SelfCascade.Cascade.Upsamplers;
using SelfCascade.Models.Unet;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Video.Upsamplers;

/// <summary>
/// One video cascade stage r ≥ 1 of the tuned Self-Cascade: the image upsampler set serving stage r (the same set,
/// the same checkpoint as for images) applied per frame. Holds the previous stage's clean latent video (scaled once,
/// as for images), repeated for the CFG halves, and the text states in the UNet's batch order; hands the video UNet
/// a <see cref="VideoFeatureUpsampling"/> for every step (or none at steps the released plain-UNet switch skips).
/// </summary>
public sealed class VideoUpsamplerStage : IDisposable
{
    private readonly Tensor _lowRes;
    private readonly Tensor _states;
    private readonly double? _plainAtOrBelow;
    private readonly VideoFeatureUpsampling _whole;

    /// <param name="injector">The sets and options (<see cref="FeatureUpsamplerInjector.SetForStage"/>, plain-UNet switch, points).</param>
    /// <param name="stageIndex">The stage (≥ 1).</param>
    /// <param name="unet">The image UNet the motion model runs (its encoder is the low-res branch).</param>
    /// <param name="lowResLatents">The previous stage's clean latent video (B, C, F, h, w), before upsampling.</param>
    /// <param name="encoderHiddenStates">(B * cfg, L, D): one text state per video, negative half first with CFG.</param>
    /// <param name="cfgMultiplier">2 with classifier-free guidance, else 1.</param>
    public VideoUpsamplerStage(FeatureUpsamplerInjector injector, int stageIndex, UNet2DConditionModel unet, Tensor lowResLatents,
        Tensor encoderHiddenStates, int cfgMultiplier)
    {
        VideoFrames.Check(lowResLatents);
        var set = injector.SetForStage(stageIndex);
        var problems = set.Config.Incompatibilities(unet.Config);
        if (problems.Count > 0)
            throw new InvalidOperationException($"upsampler set {Math.Min(stageIndex, injector.Sets.Count)} (for stage {stageIndex}) does not fit this UNet: {string.Join("; ", problems)}");
        long videos = lowResLatents.shape[0] * cfgMultiplier;
        if (encoderHiddenStates.dim() != 3 || encoderHiddenStates.shape[0] != videos)
            throw new ArgumentException($"text states must be ({videos}, L, D), one per video in the UNet batch; got [{string.Join(",", encoderHiddenStates.shape)}]", nameof(encoderHiddenStates));
        using (var scope = NewDisposeScope())
        {
            var lr = lowResLatents.detach().to(unet.Device).to_type(unet.DType);
            // The CFG halves see the same pivot: (B, ...) -> (cfg * B, ...), negative half first like the sample.
            if (cfgMultiplier > 1) lr = lr.repeat(cfgMultiplier, 1, 1, 1, 1);
            _lowRes = lr.contiguous().DetachFromDisposeScope();
            _states = encoderHiddenStates.detach().alias().DetachFromDisposeScope();
        }
        _plainAtOrBelow = injector.Options.PlainUNetAtOrBelowTimestep;
        _whole = new VideoFeatureUpsampling(set, unet, _lowRes, _states, injector.Options.Points, 0, videos);
    }

    /// <summary>The options for the step at <paramref name="timestep"/> (null = the plain video UNet for this step).</summary>
    public VideoUNetForwardOptions? OptionsForStep(double timestep) =>
        _plainAtOrBelow is double limit && timestep <= limit ? null : new VideoUNetForwardOptions { Upsamplers = _whole };

    public void Dispose()
    {
        _lowRes.Dispose();
        _states.Dispose();
    }
}

/// <summary>
/// What a video UNet call needs to run an upsampler set per frame: the set, the image UNet whose encoder makes the
/// low-res features, and the videos [start, start + count) of the stage's (CFG-doubled) low-res latent video and text
/// states (a slice when the call is split over videos, <see cref="Pipelines.VideoUNetChunking"/>). The tensors belong
/// to the <see cref="VideoUpsamplerStage"/>.
/// </summary>
public sealed class VideoFeatureUpsampling
{
    private readonly Tensor _lowRes;
    private readonly Tensor _states;
    private readonly IReadOnlyList<InjectionPoint>? _points;

    internal VideoFeatureUpsampling(FeatureUpsamplerSet set, UNet2DConditionModel unet, Tensor lowRes, Tensor states,
        IReadOnlyList<InjectionPoint>? points, long start, long count)
    {
        Set = set;
        Unet = unet;
        _lowRes = lowRes;
        _states = states;
        _points = points;
        Start = start;
        Count = count;
    }

    public FeatureUpsamplerSet Set { get; }
    public UNet2DConditionModel Unet { get; }
    /// <summary>First video of the stage's UNet batch this call covers, and how many.</summary>
    public long Start { get; }
    public long Count { get; }

    /// <summary>Videos [start, start + count) of this slice.</summary>
    public VideoFeatureUpsampling Slice(long start, long count)
    {
        if (start < 0 || count < 1 || start + count > Count)
            throw new ArgumentOutOfRangeException(nameof(start), $"videos [{start}, {start + count}) are not inside this slice of {Count}");
        return new VideoFeatureUpsampling(Set, Unet, _lowRes, _states, _points, Start + start, count);
    }

    /// <summary>
    /// The image feature hook for one video UNet call on <paramref name="videos"/> videos of <paramref name="frames"/>
    /// frames, frames folded into the batch as the video UNet folds its sample (index b*F + f): the low-res video
    /// (videos, C, F, h, w) becomes (videos*F, C, h, w) and every video's text state is repeated per frame. The low-res
    /// branch is the image UNet's encoder (spatial layers only) on each frame; the caller disposes the hook.
    /// </summary>
    public FeatureUpsamplerHook CreateHook(long videos, long frames)
    {
        if (videos != Count)
            throw new ArgumentException($"the upsamplers were prepared for {Count} videos in this UNet call, the sample has {videos}");
        if (frames != _lowRes.shape[2])
            throw new ArgumentException($"the low-res video has {_lowRes.shape[2]} frames, the sample {frames}");
        using var scope = NewDisposeScope();
        var lr = VideoFrames.Fold(_lowRes.narrow(0, Start, Count)).contiguous();
        var states = _states.narrow(0, Start, Count).repeat_interleave(frames, 0);
        // The hook keeps its own references (it detaches/aliases both), so this scope may free ours.
        return Set.CreateHook(Unet, lr, states, _points);
    }
}
