using SelfCascade.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Support;

/// <summary>Parity checks against diffusers fixtures (FIXTURES.md: max|ours - ref| &lt;= 1e-4 * max(1, max|ref|)).</summary>
public static class Parity
{
    public const double RelativeTolerance = 1e-4;

    /// <summary>Opens a fixture safetensors file (path relative to fixtures/diffusers-parity).</summary>
    public static SafeTensorsFile Open(params string[] relative) => SafeTensorsFile.Open(Fixtures.ParityPath(relative));

    public static double MaxAbsDiff(Tensor ours, Tensor reference)
    {
        using var a = ours.detach().cpu().to_type(ScalarType.Float64);
        using var b = reference.detach().cpu().to_type(ScalarType.Float64);
        using var d = (a - b).abs().max();
        return d.item<double>();
    }

    /// <summary>Asserts the FIXTURES.md tolerance; the message names the tensor and the error.</summary>
    public static void AssertClose(Tensor ours, Tensor reference, string what, double relTol = RelativeTolerance)
    {
        Assert.True(ours.shape.SequenceEqual(reference.shape),
            $"{what}: shape [{string.Join(",", ours.shape)}] vs reference [{string.Join(",", reference.shape)}]");
        using var r = reference.detach().cpu().to_type(ScalarType.Float64);
        using var rmax = r.abs().max();
        double scale = Math.Max(1.0, rmax.item<double>());
        double err = MaxAbsDiff(ours, reference);
        Assert.True(err <= relTol * scale, $"{what}: max|ours-ref| = {err:G4} > {relTol * scale:G4} (max|ref| = {scale:G4})");
    }

    /// <summary>Same shape, dtype-converted values identical.</summary>
    public static bool Same(Tensor a, Tensor b)
    {
        if (!a.shape.SequenceEqual(b.shape)) return false;
        using var eq = a.cpu().eq(b.cpu()).all();
        return eq.item<bool>();
    }

    /// <summary>Asserts bit-exact equality (RNG, token ids).</summary>
    public static void AssertEqual(Tensor ours, Tensor reference, string what)
    {
        Assert.True(ours.shape.SequenceEqual(reference.shape),
            $"{what}: shape [{string.Join(",", ours.shape)}] vs reference [{string.Join(",", reference.shape)}]");
        using var eq = ours.cpu().eq(reference.cpu()).all();
        Assert.True(eq.item<bool>(), $"{what}: not bit-identical (max diff {MaxAbsDiff(ours, reference):G4})");
    }
}
