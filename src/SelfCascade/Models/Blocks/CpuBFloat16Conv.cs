using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SelfCascade.Models.Blocks;

/// <summary>
/// Works around wrong bf16 convolutions in the CPU libtorch 2.10 that TorchSharp 0.107 bundles: on this project's
/// CPU (AMD EPYC) a bf16 <c>conv2d</c> with a kernel larger than 1x1 and an output channel count that is not a
/// multiple of 16 returns values 20-70 % off (measured over 1-24 output channels, 3-128 inputs, strides 1 and 2; 1x1
/// kernels and multiples of 16 are right; fp16 is right). It is the oneDNN bf16 path (pytorch/pytorch#163347 reports
/// the same on AMD; disabling mkldnn fixes it there). It hit every model's thin last layer: the VAE decoder's
/// conv_out (3 channels), the VAE encoder's (8) and the UNet's (4), so bf16 decodes were 30 % off.
/// Such a convolution runs here on fp32 copies and its result is rounded to bf16: the value a correct bf16 kernel
/// (fp32 accumulation, one rounding of the output) returns. Every other convolution runs as is.
/// </summary>
public static class CpuBFloat16Conv
{
    /// <summary>Whether <paramref name="conv"/> on <paramref name="input"/> takes the broken kernel.</summary>
    public static bool IsAffected(Conv2d conv, Tensor input) =>
        input.dtype == ScalarType.BFloat16 && input.device_type == DeviceType.CPU
        && conv.out_channels % 16 != 0 && conv.kernel_size.Any(k => k > 1);

    /// <summary><c>conv.call(input)</c>, in fp32 where the bf16 CPU kernel is wrong.</summary>
    public static Tensor Forward(Conv2d conv, Tensor input)
    {
        if (!IsAffected(conv, input)) return conv.call(input); // call(): offload hooks fire
        using var scope = NewDisposeScope();
        var y = F.conv2d(input.to(ScalarType.Float32), conv.weight!.to(ScalarType.Float32), conv.bias?.to(ScalarType.Float32),
            conv.stride, conv.padding, conv.dilation, conv.groups);
        return y.to(ScalarType.BFloat16).MoveToOuterDisposeScope();
    }
}
