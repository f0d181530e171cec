using SelfCascade.Models.Unet;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Video.Unet3D;

/// <summary>
/// A down block of <see cref="UNet3DConditionModel"/>: per layer a resnet then a temporal convolution (and, for the
/// cross-attention kind, a spatial transformer then a temporal transformer), then an optional downsampler. Hidden
/// states are frames folded into the batch, (B * F, C, h, w); <see cref="UNetBlockInputs"/> hold the time
/// embedding and text states already repeated per frame.
/// </summary>
public abstract class Unet3DDownBlock(string name) : nn.Module(name)
{
    /// <summary>diffusers' `res_samples`: each layer's output and the downsampler's; the block's output is the last.</summary>
    public abstract Tensor[] Forward(Tensor hidden, UNetBlockInputs inputs, long numFrames);
}

/// <summary>An up block of <see cref="UNet3DConditionModel"/>: layers that first concatenate one skip tensor, then an optional upsampler.</summary>
public abstract class Unet3DUpBlock(string name) : nn.Module(name)
{
    /// <summary>How many skip tensors the block consumes.</summary>
    public abstract int NumResnets { get; }

    /// <param name="skips">The block's skip tensors in the order they were produced; consumed from the last.</param>
    /// <param name="upsampleSize">Size for the upsampler when the latent is not a multiple of the overall factor.</param>
    public abstract Tensor Forward(Tensor hidden, IReadOnlyList<Tensor> skips, UNetBlockInputs inputs, long numFrames, long[]? upsampleSize);
}
