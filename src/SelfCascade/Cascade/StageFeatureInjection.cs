using SelfCascade.Models.Unet;
using static TorchSharp.torch;

namespace SelfCascade.Cascade;

/// <summary>
/// What the cascade hands a feature injector at the start of stage r ≥ 1 (the tuned Self-Cascade, paper §4.2): the
/// previous stage's clean latent (scaled latent space, fp32, the pivot before upsampling), the text states in the
/// UNet's batch order (negative half first with CFG), and the sizes. The tensors belong to the cascade and live until
/// the stage ends.
/// </summary>
public sealed record CascadeStageContext(
    int StageIndex,
    Tensor LowResLatent,
    Tensor EncoderHiddenStates,
    int CfgMultiplier,
    PixelSize LowResSize,
    PixelSize HighResSize,
    UNet2DConditionModel Unet);

/// <summary>Supplies per-stage UNet options (e.g. a feature hook adding upsampled low-res features).</summary>
public interface IStageFeatureInjector
{
    /// <summary>Called once before stage r ≥ 1 denoises; null = this stage runs the plain UNet.</summary>
    IStageInjection? BeginStage(CascadeStageContext context);
}

/// <summary>One stage's injection; disposed when the stage ends.</summary>
public interface IStageInjection : IDisposable
{
    /// <summary>The UNet options for the step at <paramref name="timestep"/> (null = plain UNet for this step).</summary>
    UNetForwardOptions? OptionsForStep(double timestep);
}
