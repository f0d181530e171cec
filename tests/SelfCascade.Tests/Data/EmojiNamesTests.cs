using SelfCascade.Data;

namespace SelfCascade.Tests.Data;

public sealed class EmojiNamesTests
{
    [Theory]
    [InlineData("grinning-face-with-big-eyes", "grinning face with big eyes")]
    [InlineData("1st-place-medal", "1st place medal")]
    [InlineData("flag-in-hole", "flag in hole")]
    [InlineData("Snake_Case-Name", "snake case name")]
    [InlineData("0", "0")]
    public void CaptionIsTheNameWithSpaces(string name, string caption) => Assert.Equal(caption, EmojiNames.Caption(name));

    private static readonly HashSet<string> Names = ["artist", "man-bald", "breast-feeding", "waving-hand"];

    [Theory]
    [InlineData("artist-medium-dark", "artist", false)]
    [InlineData("artist-light", "artist", false)]
    [InlineData("waving-hand-medium", "waving-hand", false)]
    [InlineData("artist-dark-skin-tone", "artist", true)]
    [InlineData("man-medium-light-skin-tone-bald", "man-bald", true)]
    [InlineData("kiss-person-person-dark-skin-tone-light-skin-tone", "kiss-person-person", true)]
    [InlineData("breast-feeding-tone3", "breast-feeding", true)]
    public void ToneVariantsNameTheirBase(string name, string expectedBase, bool isExplicit)
    {
        var tone = EmojiNames.ToneBase(name, Names.Contains);
        Assert.NotNull(tone);
        Assert.Equal(expectedBase, tone.Value.Base);
        Assert.Equal(isExplicit, tone.Value.Explicit);
    }

    [Theory]
    [InlineData("vertical-traffic-light")] // no "vertical-traffic": a design of its own
    [InlineData("medium-skin-tone")] // the swatch emoji itself
    [InlineData("dark-skin-tone")]
    [InlineData("grinning-face")]
    [InlineData("light")]
    public void OtherNamesAreNotToneVariants(string name) => Assert.Null(EmojiNames.ToneBase(name, Names.Contains));
}
