using SelfCascade.Imaging;

namespace SelfCascade.Evaluation;

/// <summary>Object counts of one generated image and its base-size sample (same prompt and seed).</summary>
public sealed record RepetitionSample(int GeneratedComponents, int BaseComponents)
{
    /// <summary><c>max(0, components(generated) - components(base))</c>.</summary>
    public int ExtraObjects => Math.Max(0, GeneratedComponents - BaseComponents);
}

/// <summary>The repetition metric over a set of (generated, base) pairs.</summary>
public sealed record RepetitionSummary(IReadOnlyList<RepetitionSample> Samples)
{
    /// <summary>Mean of <see cref="RepetitionSample.ExtraObjects"/> over the pairs.</summary>
    public double MeanExtraObjects => Samples.Count == 0 ? 0 : Samples.Average(s => (double)s.ExtraObjects);

    /// <summary>Share of pairs with at least one extra object: <c>#{extra &gt; 0} / N</c>.</summary>
    public double ShareWithExtraObjects => Samples.Count == 0 ? 0 : Samples.Count(s => s.ExtraObjects > 0) / (double)Samples.Count;
}

/// <summary>
/// Repetition (the object-duplication failure of naive high-resolution sampling): count foreground components in
/// each output and in the base-size sample of the same prompt and seed; any surplus is a repeated object.
/// </summary>
public static class RepetitionMetric
{
    public static RepetitionSample Compare(RgbImage generated, RgbImage baseImage, ComponentOptions? options = null) =>
        new(ComponentCounter.CountComponents(generated, options), ComponentCounter.CountComponents(baseImage, options));

    public static RepetitionSummary Evaluate(IEnumerable<(RgbImage Generated, RgbImage Base)> pairs, ComponentOptions? options = null) =>
        new(pairs.Select(p => Compare(p.Generated, p.Base, options)).ToList());
}
