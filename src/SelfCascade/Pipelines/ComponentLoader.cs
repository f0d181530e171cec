using SelfCascade.Checkpoints;
using SelfCascade.Models.Clip;
using SelfCascade.Models.Vae;
using SelfCascade.Schedulers;
using static TorchSharp.torch;

namespace SelfCascade.Pipelines;

/// <summary>
/// The loading steps every pipeline shares (the image pipeline, the UNet3D text-to-video pipeline and its spatial
/// half): the scheduler with the options' override, a CLIP text encoder and its tokenizer, and the VAE with
/// diffusers' fp16 upcast rule. One place, so a fix to any of them reaches every model kind.
/// </summary>
internal static class ComponentLoader
{
    /// <summary>The folder's scheduler, or <see cref="PipelineOptions.Scheduler"/> built from the folder's config.</summary>
    public static NoiseScheduler Scheduler(IModelComponents components, PipelineOptions options)
    {
        var config = SchedulerConfig.FromJson(components.Config("scheduler"));
        return options.Scheduler is null ? SchedulerFactory.Create(config) : SchedulerFactory.Create(options.Scheduler, config);
    }

    /// <summary>The text encoder named <paramref name="name"/> ("text_encoder", "text_encoder_2").</summary>
    public static ClipTextModel TextEncoder(IModelComponents components, string name, PipelineOptions options,
        Device device, ScalarType dtype) =>
        ClipTextModel.FromWeights(components.Config(name), components.Weights(name, options.Variant), device, dtype);

    /// <summary>
    /// The VAE in fp32 when <see cref="PipelineOptions.UpcastVae"/> says so or, unset, when its config has
    /// force_upcast and the pipeline runs in fp16 (diffusers' SDXL VAE rule); otherwise in <paramref name="dtype"/>.
    /// </summary>
    public static AutoencoderKL Vae(IModelComponents components, PipelineOptions options, Device device, ScalarType dtype)
    {
        var config = AutoencoderKLConfig.FromJson(components.Config("vae"));
        return AutoencoderKL.FromWeights(config, components.Weights("vae", options.Variant), device, VaeDType(config, options, dtype));
    }

    /// <summary>The dtype <see cref="Vae"/> loads in.</summary>
    public static ScalarType VaeDType(AutoencoderKLConfig config, PipelineOptions options, ScalarType dtype) =>
        options.UpcastVae ?? (config.ForceUpcast && dtype == ScalarType.Float16) ? ScalarType.Float32 : dtype;
}
