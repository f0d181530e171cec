using SelfCascade.IO;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Support;

/// <summary>
/// diffusers' own bf16 outputs of the fixtures' tiny models on the CPU (tests/reference/half-precision, made by
/// make_half_precision.py with diffusers 0.28.2 / torch 1.13) and the half-precision tolerance derived from them.
/// </summary>
public static class HalfPrecisionReference
{
    public static SafeTensorsFile Open() =>
        SafeTensorsFile.Open(Path.Combine(Fixtures.RepoRoot, "tests", "reference", "half-precision", "half_precision.safetensors"));

    /// <summary>
    /// Slack over diffusers' own error. Two correct bf16 implementations round the same operations in a different
    /// order (libtorch 2.10's kernels vs torch 1.13's), so they land at about the same distance from fp32 but not at the
    /// same point. Measured on the three outputs here: ours is 0.57-0.62x diffusers' bf16 distance from fp32 and
    /// 0.87-1.17x that distance from diffusers' own bf16 output; fp16 is 0.084-0.088x. 1.5x leaves room for other
    /// kernels' rounding order; the broken bf16 conv kernel (worked around in CpuConv2d) put bf16 at 12-16x.
    /// </summary>
    public const double Slack = 1.5;

    /// <summary>
    /// fp16 has 10 fraction bits, bf16 7: every rounding is 2^3 = 8x finer, and so is the accumulated error while
    /// nothing overflows (the reference's fp32->fp16->fp32 weight round trip is 7.8x closer than bf16's). torch 1.13 has
    /// no fp16 convolution on the CPU, so fp16 is bounded by diffusers' bf16 error / 8 (times <see cref="Slack"/>).
    /// </summary>
    public const double Fp16OverBf16 = 1.0 / 8;

    /// <summary>
    /// Asserts that <paramref name="ours"/> (a bf16 or fp16 run of the model that made <c>NAME_fp32</c>) is as close to
    /// diffusers' fp32 output as diffusers' own bf16 output is, and, for bf16, as close to diffusers' bf16 output.
    /// </summary>
    public static void AssertClose(Tensor ours, SafeTensorsFile reference, string name, ScalarType dtype)
    {
        var fp32 = reference.Read(name + "_fp32");
        var bf16 = reference.Read(name + "_bf16");
        double diffusersError = Parity.MaxAbsDiff(bf16, fp32);
        double scale = dtype == ScalarType.Float16 ? Fp16OverBf16 : 1.0;
        double bound = Slack * scale * diffusersError;
        double err = Parity.MaxAbsDiff(ours, fp32);
        Assert.True(err <= bound,
            $"{name} {dtype}: max|ours - fp32| = {err:G4} > {bound:G4} ({Slack} x {scale} x diffusers' bf16 error {diffusersError:G4})");
        if (dtype != ScalarType.BFloat16) return;
        double toDiffusers = Parity.MaxAbsDiff(ours, bf16);
        Assert.True(toDiffusers <= bound,
            $"{name} bf16: max|ours - diffusers bf16| = {toDiffusers:G4} > {bound:G4} ({Slack} x diffusers' bf16 error {diffusersError:G4})");
    }
}
