using SelfCascade.Evaluation;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Support;
using static SelfCascade.Tests.Evaluation.SyntheticImages;

namespace SelfCascade.Tests.Evaluation;

/// <summary>
/// Blur against an INDEPENDENT reference set, in the feature space the quality benchmark actually uses
/// (models/emoji-featurenet.safetensors): FD(sharp other set, reference) &lt; FD(blurred other set, reference).
/// </summary>
public sealed class BenchmarkFeatureNetBlurTests
{
    private static string FeatureNetPath => Path.Combine(Fixtures.RepoRoot, "models", "emoji-featurenet.safetensors");

    public BenchmarkFeatureNetBlurTests() => TorchSetup.Ensure();

    private static List<double> FdByBlur(FeatureNetExtractor x, IReadOnlyList<RgbImage> reference, IReadOnlyList<RgbImage> other, double[] sigmas)
    {
        using var r = x.Extract(reference);
        using var rs = FeatureStatistics.FromFeatures(r);
        return sigmas.Select(s =>
        {
            using var f = x.Extract(other.Select(i => Blur(i, s)).ToList());
            using var fs = FeatureStatistics.FromFeatures(f);
            return FrechetDistance.Compute(rs, fs);
        }).ToList();
    }

    private static void AssertIncreasing(string what, IReadOnlyList<double> v)
    {
        for (int i = 1; i < v.Count; i++)
            Assert.True(v[i] > v[i - 1], $"{what}: FD should grow with blur, got {string.Join(", ", v.Select(d => d.ToString("F3")))}");
    }

    // 96 synthetic shape images at 32 px (the embedded model's native size). Measured at σ = 0, 0.5, 1, 2, 4:
    // 1.10 1.17 1.45 2.72 9.62 and 1.95 2.05 2.40 3.69 9.91 for the two independent sets; σ = 0.5 is left out here
    // only to keep the test under ~20 s (each σ is one more feature pass over 96 images).
    [Fact]
    public void FdRanksBlurOfAnIndependentShapeSet()
    {
        using var x = new FeatureNetExtractor(FeatureNet.Load(FeatureNetPath), ownsNet: true);
        var reference = RandomSet(seed: 1, count: 96, size: 32);
        foreach (int seed in new[] { 2, 3 })
            AssertIncreasing($"independent set {seed}", FdByBlur(x, reference, RandomSet(seed: seed, count: 96, size: 32), [0, 1, 2, 4]));
    }

    // The embedded model's own samples (6 prompts x 8 seeds-in-a-batch, 10 steps, 32 px) against an independent
    // batch of the same prompts: measured 8.61 8.55 8.48 8.89 12.20 (other seed 1) and 9.50 9.52 9.76 11.09 16.60
    // (other seed 2) at σ = 0, 0.5, 1, 2, 4. Mild blur (σ ≤ 1 px) is NOT ranked at this set size (it sits inside
    // the sampling noise); σ = 2 and 4 px are. So blur is judged by the spectrum column, not by FD (docs/BENCHMARKS.md).
    [Fact]
    [Trait("Category", "Slow")]
    public void FdOnTheEmbeddedModelsSamplesRanksStrongBlurOnly()
    {
        using var x = new FeatureNetExtractor(FeatureNet.Load(FeatureNetPath), ownsNet: true);
        using var pipe = StableDiffusionPipeline.FromPretrained(Path.Combine(Fixtures.RepoRoot, "models", "emoji-base"));
        string[] prompts = ["red heart", "smiling face", "green tree", "blue car", "yellow star", "cat face"];
        List<RgbImage> Samples(long seed)
        {
            var list = new List<RgbImage>();
            foreach (var p in prompts)
            {
                using var r = pipe.Generate(new GenerationRequest(p) { Seed = seed, Steps = 10, NumImages = 8 });
                list.AddRange(r.Images);
            }
            return list;
        }
        var reference = Samples(0);
        foreach (long seed in new long[] { 1, 2 })
            AssertIncreasing($"model samples, seed {seed}", FdByBlur(x, reference, Samples(seed), [0, 2, 4]));
    }
}
