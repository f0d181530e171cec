using SelfCascade.Data;

namespace SelfCascade.Tests.Data;

public sealed class IconifySetTests
{
    [Fact]
    public void ParsesIconsDefaultsAliasesAndInfo()
    {
        var set = IconifySet.Parse(TestIconSet.Json);
        Assert.Equal("test", set.Prefix);
        Assert.Equal(9, set.Icons.Count);
        Assert.Equal(3, set.Aliases.Count);
        Assert.Equal((32.0, 32.0), (set.Icons["red-circle"].Width, set.Icons["red-circle"].Height));
        Assert.Equal((64.0, 32.0), (set.Icons["wide-bar"].Width, set.Icons["wide-bar"].Height));
        Assert.False(set.Aliases["circle-red"].Transforms);
        Assert.True(set.Aliases["right-half"].HFlip);
        Assert.True(set.Aliases["right-half"].Transforms);
        Assert.Equal("Test Shapes", set.Info.Name);
        Assert.Equal("Test Author", set.Info.Author);
        Assert.Equal("https://example.org/shapes", set.Info.AuthorUrl);
        Assert.Equal("MIT", set.Info.LicenseSpdx);
        Assert.Equal("MIT License", set.Info.LicenseTitle);
        Assert.Equal("https://example.org/shapes/LICENSE", set.Info.LicenseUrl);
        Assert.True(set.Contains("circle-red"));
        Assert.False(set.Contains("circle"));
    }

    [Fact]
    public void DefaultSizeIs16WhenTheSetGivesNone()
    {
        var set = IconifySet.Parse("""{"prefix":"p","icons":{"a":{"body":"<g/>"},"b":{"body":"<g/>","height":24}}}""");
        Assert.Equal((16.0, 16.0), (set.Icons["a"].Width, set.Icons["a"].Height));
        Assert.Equal((16.0, 24.0), (set.Icons["b"].Width, set.Icons["b"].Height));
        Assert.Empty(set.Aliases);
        Assert.Null(set.Info.LicenseSpdx);
    }

    [Fact]
    public void InfoJsonWinsOverEmbeddedInfo()
    {
        var info = new IconifyInfo("Other", "Someone", null, "Apache 2.0", "Apache-2.0", null);
        var set = IconifySet.Parse(TestIconSet.Json, info);
        Assert.Equal("Apache-2.0", set.Info.LicenseSpdx);
        Assert.Equal("Someone", set.Info.Author);
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("""{"icons":{}}""")]
    [InlineData("""{"prefix":"x","icons":[]}""")]
    public void RejectsFilesThatAreNotIconSets(string json) =>
        Assert.Throws<InvalidDataException>(() => IconifySet.Parse(json, source: "bad.json"));

    [Fact]
    public void WrapsBodyInViewBox()
    {
        var set = IconifySet.Parse(TestIconSet.Json);
        var (svg, w, h) = set.ToSvg("wide-bar");
        Assert.Equal("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 64 32\"><rect x=\"0\" y=\"0\" width=\"64\" height=\"32\" fill=\"#00ff00\"/></svg>", svg);
        Assert.Equal((64.0, 32.0), (w, h));
    }

    [Fact]
    public void AliasesResolveToTheirParentWithTransforms()
    {
        var set = IconifySet.Parse(TestIconSet.Json);
        Assert.Equal(set.ToSvg("red-circle"), set.ToSvg("circle-red"));
        var (svg, _, _) = set.ToSvg("right-half");
        Assert.Contains("<g transform=\"translate(32 0) scale(-1 1)\"><rect x=\"0\"", svg);
        Assert.Throws<KeyNotFoundException>(() => set.ToSvg("orphan-flip"));
        Assert.Throws<KeyNotFoundException>(() => set.ToSvg("nothing"));
    }

    [Fact]
    public void AliasLoopsAreReported()
    {
        var set = IconifySet.Parse("""{"prefix":"p","icons":{},"aliases":{"a":{"parent":"b"},"b":{"parent":"a"}}}""");
        Assert.Throws<InvalidDataException>(() => set.ToSvg("a"));
    }

    [Fact]
    public void QuarterTurnsSwapTheViewBoxAndBothFlipsAreAHalfTurn()
    {
        var (svg, w, h) = IconSvg.Wrap("<g/>", 40, 20, rotate: 1);
        Assert.Equal((20.0, 40.0), (w, h));
        Assert.Contains("viewBox=\"0 0 20 40\"", svg);
        Assert.Contains("rotate(90 10 10)", svg);
        var (both, _, _) = IconSvg.Wrap("<g/>", 32, 32, hFlip: true, vFlip: true);
        Assert.Contains("rotate(180 16 16)", both);
        Assert.DoesNotContain("scale", both);
        var (xlink, _, _) = IconSvg.Wrap("<use xlink:href=\"#a\"/>", 32, 32);
        Assert.Contains("xmlns:xlink=\"http://www.w3.org/1999/xlink\"", xlink);
    }
}
