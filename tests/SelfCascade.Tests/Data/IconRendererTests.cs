using SelfCascade.Data;
using SelfCascade.Imaging;

namespace SelfCascade.Tests.Data;

public sealed class IconRendererTests
{
    private static readonly IconifySet Set = IconifySet.Parse(TestIconSet.Json);

    private static IReadOnlyList<RgbImage> Render(string name, params int[] sizes)
    {
        var (svg, w, h) = Set.ToSvg(name);
        return IconRenderer.Render(svg, w, h, sizes);
    }

    private static void AssertPixel(RgbImage img, int x, int y, (int R, int G, int B) expected, int tolerance = 3)
    {
        var actual = (img[x, y, 0], img[x, y, 1], img[x, y, 2]);
        Assert.True(Math.Abs(actual.Item1 - expected.R) <= tolerance && Math.Abs(actual.Item2 - expected.G) <= tolerance && Math.Abs(actual.Item3 - expected.B) <= tolerance,
            $"{img.Width}px pixel ({x},{y}) is {actual}, expected {expected} +-{tolerance}");
    }

    private static readonly (int, int, int) White = (255, 255, 255), Red = (255, 0, 0), Blue = (0, 0, 255), Green = (0, 255, 0);

    [Fact]
    public void CircleIsRedInTheCentreOnWhiteCorners()
    {
        var images = Render("red-circle", 32, 64);
        Assert.Equal([32, 64], images.Select(i => i.Width));
        foreach (var img in images)
        {
            Assert.Equal(img.Width, img.Height);
            int s = img.Width;
            foreach (var (x, y) in new[] { (0, 0), (s - 1, 0), (0, s - 1), (s - 1, s - 1) }) AssertPixel(img, x, y, White, 0);
            AssertPixel(img, s / 2, s / 2, Red);
            AssertPixel(img, s / 2 - 1, s / 2 - 1, Red);
            // radius 12 of 32: just outside the circle on the axis is white
            AssertPixel(img, s / 2, s * 29 / 32, White, 0);
        }
    }

    [Fact]
    public void SquareEdgesFallOnThePixelGrid()
    {
        // viewBox 32, square 8..24: at 32 px columns 8..23 are blue, at 64 px columns 16..47.
        foreach (var img in Render("blue-square", 32, 64))
        {
            int k = img.Width / 32, mid = img.Width / 2;
            AssertPixel(img, 8 * k, mid, Blue);
            AssertPixel(img, 24 * k - 1, mid, Blue);
            AssertPixel(img, 8 * k - 1, mid, White);
            AssertPixel(img, 24 * k, mid, White);
            AssertPixel(img, mid, 8 * k, Blue);
            AssertPixel(img, mid, 8 * k - 1, White);
            AssertPixel(img, mid, 24 * k - 1, Blue);
            AssertPixel(img, mid, 24 * k, White);
        }
    }

    [Fact]
    public void WideIconIsCentredWithItsAspectKept()
    {
        // viewBox 64x32 fills the width and is centred vertically: rows 16..47 of 64, 8..23 of 32.
        foreach (var img in Render("wide-bar", 32, 64))
        {
            int q = img.Width / 4;
            AssertPixel(img, 0, q, Green);
            AssertPixel(img, img.Width - 1, 3 * q - 1, Green);
            AssertPixel(img, img.Width / 2, q - 1, White);
            AssertPixel(img, img.Width / 2, 3 * q, White);
        }
    }

    [Fact]
    public void FlippedAliasMirrorsItsParent()
    {
        var left = Render("left-half", 32)[0];
        var right = Render("right-half", 32)[0];
        AssertPixel(left, 4, 16, Red);
        AssertPixel(left, 28, 16, White);
        AssertPixel(right, 4, 16, White);
        AssertPixel(right, 28, 16, Red);
    }

    [Theory]
    [InlineData("broken-body")]
    [InlineData("empty-body")]
    public void BrokenOrEmptyIconsThrowInvalidData(string name) =>
        Assert.Throws<InvalidDataException>(() => Render(name, 32));

    [Fact]
    public void PngRoundTripKeepsTheRendering()
    {
        var dir = Directory.CreateTempSubdirectory("sc-render-").FullName;
        try
        {
            var img = Render("red-circle", 64)[0];
            var path = Path.Combine(dir, "c.png");
            img.SavePng(path);
            Assert.Equal(img.Pixels, RgbImage.Load(path).Pixels);
        }
        finally { Directory.Delete(dir, true); }
    }
}
