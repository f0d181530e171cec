using SelfCascade.Models.Blocks;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Blocks;

/// <summary>
/// The two oneDNN convolution workarounds (kernel above 1x1, output channels not a multiple of 16): bf16 results are
/// one bf16 rounding of the exact result, and fp32 input gradients are finite and exact even when the allocator's
/// free blocks hold NaN (without the workaround they intermittently come out NaN), on any CPU.
/// </summary>
[Collection(AloneCollection.Name)]
public class CpuConv2dTests
{
    public CpuConv2dTests() => TorchSetup.Ensure();

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
        Assert.Equal(kernel > 1 && cout % 16 != 0, CpuConv2d.IsBFloat16Affected(conv, x));
        var y = CpuConv2d.Forward(conv, x);
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
        Assert.False(CpuConv2d.IsBFloat16Affected(conv, x32));
        Assert.True(Parity.Same(CpuConv2d.Forward(conv, x32), conv.forward(x32)));
    }

    [Theory]
    [InlineData(3, 8, 3, 1)]   // the case measured worst (36 of 40 backward passes non-finite unpatched)
    [InlineData(32, 4, 3, 1)]  // a latent UNet's conv_out
    [InlineData(32, 3, 3, 1)]  // a pixel-space UNet's and the VAE decoder's conv_out
    [InlineData(16, 17, 3, 2)] // strided, odd count
    [InlineData(32, 32, 3, 1)] // not affected: the plain kernel
    [InlineData(32, 3, 1, 1)]  // not affected: 1x1
    public void Fp32_input_gradients_are_finite_and_exact_when_free_memory_holds_NaN(int cin, int cout, int kernel, int stride)
    {
        torch.manual_seed(5);
        using var conv = nn.Conv2d(cin, cout, kernel, stride: stride, padding: kernel / 2);
        using var w64 = conv.weight!.detach().to(ScalarType.Float64);
        using var b64 = conv.bias!.detach().to(ScalarType.Float64);
        for (int i = 0; i < 30; i++)
        {
            using var scope = NewDisposeScope();
            PoisonFreeMemory();
            var x = randn(4, cin, 16, 16, generator: new Generator((ulong)i)).requires_grad_(true);
            Assert.Equal(kernel > 1 && cout % 16 != 0, CpuConv2d.IsInputGradientAffected(conv, x));
            conv.zero_grad();
            var y = CpuConv2d.Forward(conv, x);
            var gradOut = randn(y.shape, generator: new Generator((ulong)(1000 + i)));
            y.backward([gradOut]);
            // The reference in float64, which libtorch computes without oneDNN.
            var x64 = x.detach().to(ScalarType.Float64).requires_grad_(true);
            var w = w64.clone().requires_grad_(true);
            var b = b64.clone().requires_grad_(true);
            var y64 = nn.functional.conv2d(x64, w, b, strides: [stride, stride], padding: [kernel / 2, kernel / 2]);
            y64.backward([gradOut.to(ScalarType.Float64)]);
            Parity.AssertClose(y.to(ScalarType.Float64), y64.detach(), $"output, pass {i}");
            Assert.True(x.grad!.isfinite().all().item<bool>(), $"non-finite input gradient in pass {i}");
            Parity.AssertClose(x.grad!.to(ScalarType.Float64), x64.grad!, $"input gradient, pass {i}");
            Parity.AssertClose(conv.weight!.grad!.to(ScalarType.Float64), w.grad!, $"weight gradient, pass {i}");
            Parity.AssertClose(conv.bias!.grad!.to(ScalarType.Float64), b.grad!, $"bias gradient, pass {i}");
        }
    }

    /// <summary>Allocates and frees NaN-filled blocks of the sizes the convolutions above use, so that memory the
    /// faulty kernel reads without writing holds NaN rather than whatever happened to be there.</summary>
    private static void PoisonFreeMemory()
    {
        foreach (long n in new long[] { 4 * 16 * 16 * 16, 4 * 32 * 16 * 16, 4 * 64 * 16 * 16, 4 * 32 * 18 * 18, 4 * 3 * 16 * 16, 4 * 8 * 16 * 16, 4 * 32 * 8 * 8 })
            full(n, float.NaN).Dispose();
    }
}
