using SelfCascade.Pipelines;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Server.Compat.ComfyUI;

/// <summary>
/// MODEL, CLIP and VAE outputs of CheckpointLoaderSimple: all three name the same loaded pipeline. LoraLoader adds
/// its LoRA to the MODEL's <see cref="Loras"/> (strength_model: the UNet) and to the CLIP's (strength_clip: the text
/// encoders); they are merged into the pipeline only while a sampler node runs.
/// </summary>
public sealed record ComfyModelRef(string Checkpoint)
{
    public IReadOnlyList<ComfyLora> Loras { get; init; } = [];
}

/// <summary>A served LoRA by name and strength, as a LoraLoader applied it to a MODEL or a CLIP.</summary>
public sealed record ComfyLora(string Name, double Strength);

/// <summary>CONDITIONING: the prompt text, the checkpoint whose text encoder it names and that CLIP's LoRAs; encoded when a sampler runs.</summary>
public sealed record ComfyConditioning(string Text, string Checkpoint)
{
    public IReadOnlyList<ComfyLora> ClipLoras { get; init; } = [];
}

/// <summary>MASK (LoadImage's second output): not consumed by any node here; kept for slot compatibility.</summary>
public sealed record ComfyMask(int Width, int Height);

/// <summary>
/// LATENT. EmptyLatentImage has no model input, so an empty latent is a pixel size and batch only, given a shape
/// (channels, VAE factor) by the first model that samples it; every other latent is a tensor (B, C, h, w) in the
/// scaled latent space of <see cref="Checkpoint"/> (fp32, on the CPU between nodes).
/// </summary>
public sealed class ComfyLatent : IDisposable
{
    public int Batch { get; }
    /// <summary>Pixel size (latent size × VAE factor; for an empty latent, what EmptyLatentImage asked).</summary>
    public int Width { get; }
    public int Height { get; }
    public Tensor? Samples { get; }
    public int VaeFactor { get; }
    public string? Checkpoint { get; }
    public bool IsEmpty => Samples is null;

    private ComfyLatent(int batch, int width, int height, Tensor? samples, int factor, string? checkpoint)
    {
        Batch = batch; Width = width; Height = height; Samples = samples; VaeFactor = factor; Checkpoint = checkpoint;
    }

    public static ComfyLatent Empty(int width, int height, int batch) => new(batch, width, height, null, 0, null);

    /// <summary>Takes ownership of <paramref name="samples"/> (moved to the CPU if needed).</summary>
    public static ComfyLatent FromSamples(Tensor samples, int vaeFactor, string checkpoint)
    {
        var cpu = samples.device_type == DeviceType.CPU ? samples : CpuOwned(samples);
        return new ComfyLatent((int)cpu.shape[0], (int)cpu.shape[3] * vaeFactor, (int)cpu.shape[2] * vaeFactor, cpu, vaeFactor, checkpoint);
    }

    private static Tensor CpuOwned(Tensor t)
    {
        var c = t.cpu();
        t.Dispose();
        return c;
    }

    /// <summary>The latent shape this latent has for <paramref name="pipe"/>: (B, in_channels, H/f, W/f).</summary>
    public long[] ShapeFor(StableDiffusionPipeline pipe)
    {
        if (Samples is not null) return Samples.shape;
        int f = pipe.VaeScaleFactor;
        if (Width % f != 0 || Height % f != 0)
            throw new ArgumentException($"latent size {Width}x{Height} must be a multiple of {f} (the model's VAE factor)");
        return [Batch, pipe.Unet.Config.InChannels, Height / f, Width / f];
    }

    /// <summary>The samples for a model (zeros for an empty latent), checked against its channel count.</summary>
    public Tensor SamplesFor(StableDiffusionPipeline pipe)
    {
        var shape = ShapeFor(pipe);
        if (Samples is null) return zeros(shape, ScalarType.Float32);
        if (Samples.shape[1] != pipe.Unet.Config.InChannels || VaeFactor != pipe.VaeScaleFactor)
            throw new ArgumentException($"a latent of {Samples.shape[1]} channels (VAE factor {VaeFactor}) does not fit this model " +
                $"({pipe.Unet.Config.InChannels} channels, VAE factor {pipe.VaeScaleFactor})");
        return Samples.alias();
    }

    /// <summary>A latent of another pixel size: resized spec for an empty latent; the caller resizes the tensor.</summary>
    public ComfyLatent ResizedEmpty(int width, int height) => Empty(width, height, Batch);

    public void Dispose() => Samples?.Dispose();
}

/// <summary>IMAGE: (B, 3, H, W) fp32 in [-1, 1] on the CPU (ComfyUI keeps (B, H, W, 3) in [0, 1]; the node semantics are the same).</summary>
public sealed class ComfyImage(Tensor pixels) : IDisposable
{
    public Tensor Pixels { get; } = pixels;
    public int Batch => (int)Pixels.shape[0];
    public void Dispose() => Pixels.Dispose();
}
