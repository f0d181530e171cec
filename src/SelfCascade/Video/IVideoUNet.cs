using SelfCascade.Models.Unet;
using SelfCascade.Video.Upsamplers;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Video;

/// <summary>
/// A text-conditioned video denoiser in diffusers' layout, whatever its kind (AnimateDiff's UNetMotionModel,
/// a ModelScope-style UNet3DConditionModel): <c>sample</c> (B, C, F, h, w) -> noise prediction of the same layout.
/// The video pipelines and the video cascade only see this.
/// </summary>
public interface IVideoUNet
{
    /// <summary>Latent channels the network takes (and returns).</summary>
    int InChannels { get; }

    /// <summary>Most frames one forward can take (AnimateDiff: motion_max_seq_length); null = no fixed limit.</summary>
    int? MaxFrames { get; }

    /// <summary>Number of 2x down/up sampling levels (latent sides that are multiples of 2^this need no resizing).</summary>
    int NumUpsamplers { get; }

    /// <summary>Where the forward runs.</summary>
    Device Device { get; }

    /// <summary>Parameter dtype (inputs are cast to it by the caller).</summary>
    ScalarType DType { get; }

    /// <param name="sample">(B, C, F, h, w) latents.</param>
    /// <param name="timestep">A scalar, (1,) or (B,) tensor.</param>
    /// <param name="encoderHiddenStates">(B, L, D): one text state per video, shared by its frames.</param>
    /// <param name="options">Per-call settings; a kind that cannot honour one throws <see cref="NotSupportedException"/>.</param>
    Tensor Forward(Tensor sample, Tensor timestep, Tensor encoderHiddenStates, VideoUNetForwardOptions? options = null);
}

/// <summary>Optional per-call settings of an <see cref="IVideoUNet"/>.</summary>
public sealed class VideoUNetForwardOptions
{
    /// <summary>
    /// The attn-scale baseline on the spatial self-attention layers (<see cref="UNetForwardOptions.SelfAttentionEntropyRatio"/>);
    /// temporal attention is left alone (its token count, the frames, does not change with resolution). Null = off.
    /// </summary>
    public double? SelfAttentionEntropyRatio { get; init; }

    /// <summary>Block-output hook on the spatial network, frames folded into the batch as (B*F, C, h, w), index b*F + f.</summary>
    public IUNetFeatureHook? FeatureHook { get; init; }

    /// <summary>
    /// Sees (and may replace) the hidden state after every layer's temporal layers (AnimateDiff: the motion module's
    /// output), frames folded as for <see cref="FeatureHook"/>. Null = none.
    /// </summary>
    public IUNetLayerHook? LayerHook { get; init; }

    /// <summary>
    /// The tuned cascade's feature upsamplers, run per frame at the image injection points (<see cref="VideoFeatureUpsampling"/>;
    /// AnimateDiff's image UNet or a UNet3D's spatial half). Cannot be combined with <see cref="FeatureHook"/>. Null = none.
    /// </summary>
    public VideoFeatureUpsampling? Upsamplers { get; init; }

    /// <summary>These options for a call on videos [start, start + count) of the batch (the per-video state sliced).</summary>
    public VideoUNetForwardOptions ForVideos(long start, long count) => Upsamplers is null ? this : new VideoUNetForwardOptions
    {
        SelfAttentionEntropyRatio = SelfAttentionEntropyRatio, FeatureHook = FeatureHook, LayerHook = LayerHook,
        Upsamplers = Upsamplers.Slice(start, count),
    };
}
