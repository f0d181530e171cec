using static TorchSharp.torch;

namespace SelfCascade.Pipelines;

/// <summary>How a pipeline is loaded: device, weight dtype, file variant and scheduler choice.</summary>
public sealed class PipelineOptions
{
    /// <summary>"cpu", "cuda" or "cuda:N".</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>
    /// Weights of the frozen networks (fp32, fp16, bf16). The latents and scheduler math stay fp32. Null: the
    /// device's default (<see cref="SelfCascade.Runtime.TorchRuntime.DefaultDType"/>: fp16 on CUDA, fp32 on CPU).
    /// </summary>
    public ScalarType? DType { get; init; }

    /// <summary>diffusers weight variant (e.g. "fp16" for diffusion_pytorch_model.fp16.safetensors).</summary>
    public string? Variant { get; init; }

    /// <summary>A scheduler by CLI name (ddim, euler, dpm++2m, ...), configured from the folder's scheduler config.</summary>
    public string? Scheduler { get; init; }

    /// <summary>
    /// Decode with the VAE in fp32 even when the other networks are fp16 (SDXL's VAE overflows in fp16, docs/ARCHITECTURE.md §6;
    /// diffusers' `force_upcast`). Null: follow the VAE config's force_upcast.
    /// </summary>
    public bool? UpcastVae { get; init; }

    /// <summary>
    /// For a single-file checkpoint: a diffusers folder whose configs (not weights) describe its networks, for shapes
    /// other than the built-in SD 1.5 / 2.1 / SDXL ones (<c>--config DIR</c>). Ignored for folders.
    /// </summary>
    public string? ConfigDir { get; init; }

    /// <summary>For a single-file checkpoint: "epsilon" or "v_prediction", overriding the config or the SD 2.x guess.</summary>
    public string? PredictionType { get; init; }

    /// <summary>
    /// Memory mode for small GPUs: weights stay on the CPU and move to <see cref="Device"/> per component
    /// (<see cref="SelfCascade.Offload.OffloadMode.Model"/>) or per layer (<see cref="SelfCascade.Offload.OffloadMode.Sequential"/>).
    /// </summary>
    public SelfCascade.Offload.OffloadMode Offload { get; init; }
}
