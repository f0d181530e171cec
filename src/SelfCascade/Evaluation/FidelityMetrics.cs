using SelfCascade.Imaging;
using static TorchSharp.torch;

namespace SelfCascade.Evaluation;

/// <summary>Settings for <see cref="FidelityMetrics.Compare"/>.</summary>
/// <param name="PatchSize">Native crop size for patch FD/KID (the base model's training size, e.g. 32); 0 = no patch metrics.</param>
/// <param name="RandomPatches">Random crops per image; 0 = the non-overlapping grid instead.</param>
public sealed record FidelityOptions(int KidSubsetSize = 1000, int KidSubsets = 100, int PatchSize = 0, int RandomPatches = 0, int Seed = 0);

/// <summary>FD and KID on whole images and, when asked, on native-resolution crops.</summary>
public sealed record FidelityResult(double Fd, KidResult Kid, double? PatchFd, KidResult? PatchKid, int PatchCount);

/// <summary>Fidelity of a generated set against a real one in a feature space.</summary>
public static class FidelityMetrics
{
    public static FidelityResult Compare(IFeatureExtractor extractor, IReadOnlyList<RgbImage> real, IReadOnlyList<RgbImage> generated, FidelityOptions? options = null)
    {
        var o = options ?? new FidelityOptions();
        var (fd, kid) = FdAndKid(extractor, real, generated, o, o.Seed);
        if (o.PatchSize <= 0) return new FidelityResult(fd, kid, null, null, 0);
        var realPatches = Patches(real, o, o.Seed);
        var generatedPatches = Patches(generated, o, o.Seed + 1);
        var (patchFd, patchKid) = FdAndKid(extractor, realPatches, generatedPatches, o, o.Seed + 2);
        return new FidelityResult(fd, kid, patchFd, patchKid, generatedPatches.Count);
    }

    private static IReadOnlyList<RgbImage> Patches(IReadOnlyList<RgbImage> images, FidelityOptions o, int seed) =>
        o.RandomPatches > 0 ? ImageCrops.RandomFromSet(images, o.PatchSize, o.RandomPatches, seed) : ImageCrops.GridFromSet(images, o.PatchSize);

    private static (double Fd, KidResult Kid) FdAndKid(IFeatureExtractor extractor, IReadOnlyList<RgbImage> real, IReadOnlyList<RgbImage> generated, FidelityOptions o, int seed)
    {
        using var scope = NewDisposeScope();
        var fr = extractor.Extract(real);
        var fg = extractor.Extract(generated);
        return (FrechetDistance.Compute(fr, fg), KernelInceptionDistance.Compute(fr, fg, o.KidSubsetSize, o.KidSubsets, seed));
    }
}
