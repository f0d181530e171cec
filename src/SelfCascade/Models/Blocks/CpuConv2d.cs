using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SelfCascade.Models.Blocks;

/// <summary>
/// Every convolution of the networks runs through here: it works around two defects of the oneDNN (mkldnn)
/// convolution in the CPU libtorch 2.10 that TorchSharp 0.107 bundles. Both hit a convolution with a kernel larger
/// than 1x1 whose output channel count is not a multiple of 16 (oneDNN's channel block) — the thin first and last
/// layers: the UNet's conv_out (4 latent or 3 pixel channels), the VAE decoder's conv_out (3), the encoder's (8).
/// <list type="number">
/// <item><b>bf16 forward values are wrong</b>: 20-70 % off (measured over 1-24 output channels, 3-128 inputs,
/// strides 1 and 2; fp16 and fp32 forwards are right). pytorch/pytorch#163347 reports the same on AMD. Such a
/// convolution runs on fp32 copies and its result is rounded to bf16: the value a correct bf16 kernel (fp32
/// accumulation, one rounding) returns.</item>
/// <item><b>The fp32 gradient with respect to the input reads uninitialised memory</b>: it intermittently holds
/// NaN or arbitrary finite values, depending on what the allocator's free blocks last held (measured with the
/// allocator's free blocks filled with NaN first: 2-36 of 40 backward passes non-finite for 3, 4 and 8 output
/// channels, none for 16; 1x1 kernels, weight and bias gradients and the forward are right). This was the
/// "intermittent NaN in training" bug: base-model training and upsampler training both back-propagate through
/// the UNet's conv_out. When autograd will need the input's gradient, the weight and bias are zero-padded to a
/// multiple of 16 output channels and the output narrowed back: the first channels are the same convolution,
/// the padded ones are never used, and the gradient buffer oneDNN reads has no padding left to be uninitialised.
/// (Tested in <c>Blocks/CpuConv2dTests</c> with the allocator poisoned by NaN.)</item>
/// </list>
/// Every other convolution runs as is, through <c>call()</c> so that offload hooks fire.
/// </summary>
public static class CpuConv2d
{
    /// <summary>oneDNN's channel block for fp32/bf16 convolutions on x86.</summary>
    public const int ChannelBlock = 16;

    private static bool ThinWithKernel(Conv2d conv, Tensor input) =>
        input.device_type == DeviceType.CPU && conv.out_channels % ChannelBlock != 0 && conv.kernel_size.Any(k => k > 1);

    /// <summary>Whether <paramref name="conv"/> on <paramref name="input"/> takes the wrong bf16 forward kernel.</summary>
    public static bool IsBFloat16Affected(Conv2d conv, Tensor input) =>
        input.dtype == ScalarType.BFloat16 && ThinWithKernel(conv, input);

    /// <summary>Whether autograd would ask the faulty kernel for <paramref name="input"/>'s gradient (measured for
    /// ungrouped convolutions; grouped ones cannot be padded this way and run as they are).</summary>
    public static bool IsInputGradientAffected(Conv2d conv, Tensor input) =>
        input.dtype != ScalarType.BFloat16 && conv.groups == 1 && input.requires_grad && is_grad_enabled() && ThinWithKernel(conv, input);

    /// <summary><c>conv.call(input)</c>, with the two workarounds where they apply.</summary>
    public static Tensor Forward(Conv2d conv, Tensor input)
    {
        if (IsBFloat16Affected(conv, input))
        {
            using var scope = NewDisposeScope();
            var y = F.conv2d(input.to(ScalarType.Float32), conv.weight!.to(ScalarType.Float32), conv.bias?.to(ScalarType.Float32),
                conv.stride, conv.padding, conv.dilation, conv.groups);
            return y.to(ScalarType.BFloat16).MoveToOuterDisposeScope();
        }
        if (IsInputGradientAffected(conv, input)) return PaddedChannels(conv, input);
        return conv.call(input);
    }

    /// <summary>The convolution with its output channels zero-padded to a multiple of <see cref="ChannelBlock"/>,
    /// narrowed back to the real ones; differentiable with respect to the input, the weight and the bias.</summary>
    public static Tensor PaddedChannels(Conv2d conv, Tensor input)
    {
        using var scope = NewDisposeScope();
        var w = conv.weight!;
        long oc = w.shape[0];
        long extra = (oc + ChannelBlock - 1) / ChannelBlock * ChannelBlock - oc;
        var wp = cat([w, zeros([extra, w.shape[1], w.shape[2], w.shape[3]], w.dtype, w.device)], 0);
        var bp = conv.bias is { } b ? cat([b, zeros([extra], b.dtype, b.device)], 0) : null;
        var y = F.conv2d(input, wp, bp, conv.stride, conv.padding, conv.dilation, conv.groups).narrow(1, 0, oc);
        return y.MoveToOuterDisposeScope();
    }
}
