using SelfCascade.Cascade;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Cascade;

public class PivotTests
{
    public PivotTests() => TorchSetup.Ensure();

    [Fact]
    public void Bilinear_x2_reproduces_the_fixture_pivot()
    {
        // sd_tiny: stage_pivot_upsampled = interpolate(base_latents_out, scale_factor=2, mode="bilinear", align_corners=False).
        using var file = Parity.Open("pipelines", "sd_tiny", "io.safetensors");
        using var baseLatents = file.Read("base_latents_out");
        using var expected = file.Read("stage_pivot_upsampled");
        using var ours = Pivot.Upsample(baseLatents, baseLatents.shape[2] * 2, baseLatents.shape[3] * 2);
        Parity.AssertClose(ours, expected, "stage_pivot_upsampled");
        // Same kernel, same scale: it is in fact bit-identical.
        Parity.AssertEqual(ours, expected, "stage_pivot_upsampled (exact)");
    }

    [Theory]
    [InlineData(PivotResizeMode.Bilinear, 2)]
    [InlineData(PivotResizeMode.Bilinear, 4)]
    [InlineData(PivotResizeMode.Bicubic, 2)]
    [InlineData(PivotResizeMode.Bicubic, 3)]
    public void Size_and_integer_scale_factor_give_identical_results(PivotResizeMode mode, int k)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(7);
        var x = randn([2, 4, 13, 17], generator: g);
        var bySize = Pivot.Upsample(x, 13 * k, 17 * k, mode);
        var byScale = nn.functional.interpolate(x, scale_factor: [k, k],
            mode: mode == PivotResizeMode.Bilinear ? InterpolationMode.Bilinear : InterpolationMode.Bicubic, align_corners: false);
        Parity.AssertEqual(bySize, byScale, $"{mode} x{k}");
    }

    [Fact]
    public void Non_integer_ratio_follows_the_explicit_size()
    {
        using var scope = NewDisposeScope();
        var x = arange(7, dtype: ScalarType.Float32).view(1, 1, 1, 7).expand(1, 1, 2, 7).contiguous();
        var up = Pivot.Upsample(x, 2, 10);
        Assert.Equal([1L, 1, 2, 10], up.shape);
        // align_corners=False with size=: source x = (i + 0.5) * 7/10 - 0.5, clamped at 0.
        for (int i = 0; i < 10; i++)
        {
            double src = Math.Max(0, (i + 0.5) * 0.7 - 0.5);
            Assert.Equal(Math.Min(src, 6), up[0, 0, 0, i].item<float>(), 5);
        }
    }

    [Fact]
    public void Upsample_of_a_constant_is_constant_and_sizes_are_checked()
    {
        using var scope = NewDisposeScope();
        var c = full([1, 4, 8, 12], 0.25f);
        Parity.AssertClose(Pivot.Upsample(c, 16, 24), full([1, 4, 16, 24], 0.25f), "constant");
        Assert.Throws<ArgumentException>(() => Pivot.Upsample(c, 4, 24));
        Assert.Throws<ArgumentException>(() => Pivot.Upsample(c.view(4, 8, 12), 16, 24));
        Assert.Throws<ArgumentException>(() => Pivot.Downsample(c, 16, 24));
    }

    [Fact]
    public void Antialiased_downsample_uses_the_widened_triangle_filter()
    {
        using var scope = NewDisposeScope();
        // An impulse at (7, 7). Bilinear x1/2 with antialias: output i centres at input 2i + 1, taps at distance
        // 0.5 and 1.5 weigh 0.75 and 0.25 (triangle of support 2), normalised: [1, 3, 3, 1] / 8 per axis.
        var x = zeros(1, 1, 16, 16);
        x[0, 0, 7, 7] = tensor(1.0f);
        var aa = Pivot.Downsample(x, 8, 8);
        Assert.Equal(9.0 / 64, aa[0, 0, 3, 3].item<float>(), 6);
        Assert.Equal(3.0 / 64, aa[0, 0, 3, 4].item<float>(), 6);
        Assert.Equal(1.0 / 64, aa[0, 0, 4, 4].item<float>(), 6);
        Assert.Equal(0.25, aa.sum().item<float>(), 5); // an average of 2x2 inputs per output: mass / 4
        // Without antialiasing the impulse would be sampled by 2-tap bilinear: 0.25 at (3, 3), nothing at (4, 4).
        var plain = nn.functional.interpolate(x, size: [8, 8], mode: InterpolationMode.Bilinear, align_corners: false);
        Assert.Equal(0.25, plain[0, 0, 3, 3].item<float>(), 6);
        Assert.Equal(0.0, plain[0, 0, 4, 4].item<float>(), 6);
        // A checkerboard (Nyquist) averages out instead of aliasing.
        var checker = (arange(16).view(16, 1) + arange(16).view(1, 16)).remainder(2).to(ScalarType.Float32).view(1, 1, 16, 16);
        var down = Pivot.Downsample(checker, 4, 4);
        Assert.True((down - 0.5).abs().max().item<float>() < 0.07, "antialiased checkerboard should be ~0.5 everywhere");
    }
}
