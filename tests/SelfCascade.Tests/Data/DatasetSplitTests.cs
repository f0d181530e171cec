using SelfCascade.Data;

namespace SelfCascade.Tests.Data;

public sealed class DatasetSplitTests
{
    [Theory]
    // Published FNV-1a 32-bit test vectors.
    [InlineData("", 0x811C9DC5u)]
    [InlineData("a", 0xE40C292Cu)]
    [InlineData("foobar", 0xBF9CF968u)]
    public void HashIsFnv1a32(string text, uint expected) => Assert.Equal(expected, DatasetSplit.Fnv1a(text));

    [Fact]
    public void SplitFollowsTheBucketRule()
    {
        foreach (var caption in new[] { "grinning face", "red heart", "dog", "pirate flag", "a", "foobar" })
        {
            uint bucket = DatasetSplit.Fnv1a(caption) % 100;
            var expected = bucket < 80 ? Split.Train : bucket < 90 ? Split.Validation : Split.Test;
            Assert.Equal(expected, DatasetSplit.Of(caption));
            Assert.Equal(expected, DatasetSplit.Of(caption)); // stable
        }
        // "a" hashes to 0xE40C292C = 3826002220, bucket 20: train; pinned so a changed rule fails here.
        Assert.Equal(Split.Train, DatasetSplit.Of("a"));
    }

    [Fact]
    public void SplitIsRoughly80_10_10()
    {
        const int n = 20000;
        var counts = Enumerable.Range(0, n).Select(i => DatasetSplit.Of($"concept number {i}")).GroupBy(s => s).ToDictionary(g => g.Key, g => g.Count());
        Assert.InRange(counts[Split.Train] / (double)n, 0.78, 0.82);
        Assert.InRange(counts[Split.Validation] / (double)n, 0.085, 0.115);
        Assert.InRange(counts[Split.Test] / (double)n, 0.085, 0.115);
    }

    [Fact]
    public void SameConceptInTwoSetsGetsOneSplit()
    {
        var a = DesignSelector.Select(IconifySet.Parse("""{"prefix":"a","icons":{"red-heart":{"body":"<g/>"},"dog":{"body":"<g/>"}}}"""));
        var b = DesignSelector.Select(IconifySet.Parse("""{"prefix":"b","icons":{"red-heart":{"body":"<g/>"},"dog-face":{"body":"<g/>"}}}"""));
        Assert.Equal(a.Designs.Single(d => d.Name == "red-heart").Split, b.Designs.Single(d => d.Name == "red-heart").Split);
        Assert.Equal("a__red-heart", a.Designs.Single(d => d.Name == "red-heart").Id);
    }

    [Fact]
    public void SelectorKeepsIconsAndTransformingAliasesAndDropsToneVariants()
    {
        var selection = DesignSelector.Select(IconifySet.Parse(TestIconSet.Json));
        Assert.Equal(
            ["blue-square", "broken-body", "empty-body", "left-half", "orphan-flip", "red-circle", "right-half", "traffic-light", "waving-hand", "wide-bar"],
            selection.Designs.Select(d => d.Name));
        Assert.Equal(1, selection.ToneVariantsDropped);
        Assert.Equal(1, selection.PlainAliasesSkipped);
        Assert.Equal("traffic light", selection.Designs.Single(d => d.Name == "traffic-light").Caption);
    }

    [Fact]
    public void OrphanToneVariantsKeepOneRepresentativeWithTheTonelessCaption()
    {
        var set = IconifySet.Parse("""
            {"prefix":"n","icons":{
              "kiss-person-person-light-skin-tone-dark-skin-tone":{"body":"<g/>"},
              "kiss-person-person-dark-skin-tone-light-skin-tone":{"body":"<g/>"},
              "medium-skin-tone":{"body":"<g/>"}}}
            """);
        var selection = DesignSelector.Select(set);
        Assert.Equal(2, selection.Designs.Count);
        var kiss = selection.Designs.Single(d => d.Name.StartsWith("kiss", StringComparison.Ordinal));
        Assert.Equal("kiss-person-person-dark-skin-tone-light-skin-tone", kiss.Name); // first in ordinal order
        Assert.Equal("kiss person person", kiss.Caption);
        Assert.Equal("medium skin tone", selection.Designs.Single(d => d.Name == "medium-skin-tone").Caption);
        Assert.Equal(1, selection.ToneVariantsDropped);
    }
}
