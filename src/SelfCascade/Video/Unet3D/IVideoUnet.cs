using SelfCascade.Models.Unet;
using static TorchSharp.torch;

namespace SelfCascade.Video.Unet3D;

/// <summary>
/// What a text-to-video pipeline or the video cascade needs from a video UNet, whichever kind it is (ModelScope-style
/// <see cref="UNet3DConditionModel"/>, or an image UNet with AnimateDiff motion modules): a noise prediction for
/// latent videos (B, C, F, H, W) with one text state and one timestep per video.
/// </summary>
public interface IVideoUnet : IDisposable
{
    int InChannels { get; }
    /// <summary>The latent size the model was trained at (config `sample_size`), if known.</summary>
    int? SampleSize { get; }
    /// <summary>The most frames one forward can take (a motion adapter's `motion_max_seq_length`); null = no limit.</summary>
    int? MaxFrames { get; }
    ScalarType DType { get; }
    Device Device { get; }

    /// <param name="sample">(B, C, F, H, W) latents.</param>
    /// <param name="timestep">Scalar, (1,) or (B,).</param>
    /// <param name="encoderHiddenStates">(B, L, D), one per video.</param>
    /// <param name="options">Feature hook (block outputs are frames folded into the batch, (B * F, C, h, w)) and spatial attention scaling.</param>
    /// <returns>(B, out_channels, F, H, W).</returns>
    Tensor Forward(Tensor sample, Tensor timestep, Tensor encoderHiddenStates, UNetForwardOptions? options = null);
}
