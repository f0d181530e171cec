using SelfCascade.Models.Blocks;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Blocks;

/// <summary>
/// The bf16 convolution workaround: convolutions that the CPU bf16 kernel gets wrong (kernel above 1x1, output
/// channels not a multiple of 16) come out as one bf16 rounding of the exact result, on any CPU.
/// </summary>
public class CpuBFloat16ConvTests
{
    public CpuBFloat16ConvTests() => TorchSetup.Ensure();

    [Theory]
    [InlineData(32, 3, 3, 1)]  // the VAE decoder's conv_out
    [InlineData(64, 8, 3, 1)]  // the VAE encoder's conv_out
    [InlineData(32, 4, 3, 1)]  // the UNet's conv_out
    [InlineData(16, 17, 3, 2)] // strided, odd count
    [InlineData(32, 32, 3, 1)] // not affected: the plain kernel
    [InlineData(32, 3, 1, 1)]  // not affected: 1x1
    public void Bf16_convolutions_are_one_rounding_of_the_exact_result(int cin, int cout, int kernel, int stride)
    {
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        torch.manual_seed(7);
        using var conv = nn.Conv2d(cin, cout, kernel, stride: stride, padding: kernel / 2);
        conv.to(ScalarType.BFloat16);
        var x = randn(2, cin, 24, 20, generator: new Generator(3)).to(ScalarType.BFloat16);
        Assert.Equal(kernel > 1 && cout % 16 != 0, CpuBFloat16Conv.IsAffected(conv, x));
        var y = CpuBFloat16Conv.Forward(conv, x);
        Assert.Equal(ScalarType.BFloat16, y.dtype);
        var exact = nn.functional.conv2d(x.to(ScalarType.Float64), conv.weight!.to(ScalarType.Float64), conv.bias!.to(ScalarType.Float64),
            strides: [stride, stride], padding: [kernel / 2, kernel / 2]);
        // One bf16 rounding (8 significant bits) of values accumulated in fp32: |err| <= 2^-8 |y| (plus fp32 noise).
        var err = (y.to(ScalarType.Float64) - exact).abs();
        var bound = exact.abs() * Math.Pow(2, -8) + 1e-6;
        Assert.True(err.le(bound).all().item<bool>(), $"max error {err.max().item<double>():G4}, max |y| {exact.abs().max().item<double>():G4}");
        // fp32 and fp16 inputs go through the module untouched.
        var x32 = x.to(ScalarType.Float32);
        conv.to(ScalarType.Float32);
        Assert.False(CpuBFloat16Conv.IsAffected(conv, x32));
        Assert.True(Parity.Same(CpuBFloat16Conv.Forward(conv, x32), conv.forward(x32)));
    }
}
