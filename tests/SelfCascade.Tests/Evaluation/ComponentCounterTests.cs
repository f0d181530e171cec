using SelfCascade.Evaluation;
using SelfCascade.Imaging;
using SelfCascade.Tests.Support;
using static SelfCascade.Tests.Evaluation.SyntheticImages;

namespace SelfCascade.Tests.Evaluation;

public sealed class ComponentCounterTests
{
    private static readonly (byte, byte, byte) Red = (220, 30, 30), Blue = (30, 60, 200), Green = (40, 170, 60);

    public ComponentCounterTests() => TorchSetup.Ensure();

    [Fact]
    public void CountsOneTwoThreeSeparatedShapes()
    {
        var img = White(128);
        Circle(img, 20, 20, 12, Red);
        Assert.Equal(1, ComponentCounter.CountComponents(img));
        Square(img, 60, 10, 20, Blue);
        Assert.Equal(2, ComponentCounter.CountComponents(img));
        Circle(img, 90, 90, 15, Green);
        Assert.Equal(3, ComponentCounter.CountComponents(img));
    }

    [Fact]
    public void TouchingOrOverlappingShapesAreOneObject()
    {
        var img = White(96);
        Circle(img, 30, 40, 15, Red);
        Square(img, 44, 30, 20, Blue); // overlaps the circle's right edge
        Assert.Equal(1, ComponentCounter.CountComponents(img));

        var touching = White(96);
        Square(touching, 10, 10, 20, Red, antialias: false);
        Square(touching, 30, 10, 20, Blue, antialias: false); // shares the edge x = 30
        Assert.Equal(1, ComponentCounter.CountComponents(touching));
    }

    [Fact]
    public void TinySpecksAreIgnored()
    {
        var img = White(128); // min area 0.1 % = 16.4 px
        Circle(img, 64, 64, 20, Red);
        Square(img, 5, 5, 3, Blue, antialias: false);     // 9 px (+ edge) speck
        Square(img, 110, 110, 2, Green, antialias: false); // 4 px speck
        Assert.Equal(1, ComponentCounter.CountComponents(img));
        Assert.Equal(3, ComponentCounter.CountComponents(img, new ComponentOptions(MinAreaFraction: 0)));
    }

    [Theory]
    [InlineData(2.3)]
    [InlineData(5.7)]
    [InlineData(11.1)]
    [InlineData(30.4)]
    public void AntialiasedAndBlurredEdgesDoNotCreateExtraComponents(double radius)
    {
        var img = White(80);
        Circle(img, 40.3, 39.7, radius, Red);
        Assert.Equal(1, ComponentCounter.CountComponents(img, new ComponentOptions(MinAreaFraction: 0)));
        Assert.Equal(1, ComponentCounter.CountComponents(Blur(img, 1.0), new ComponentOptions(MinAreaFraction: 0)));

        // A thin anti-aliased diagonal stroke: 8-connectivity keeps it whole.
        var stroke = White(80);
        Fill(stroke, (x, y) => Math.Abs(x - y) < 0.8 && x > 5 && x < 75, Blue);
        Assert.Equal(1, ComponentCounter.CountComponents(stroke, new ComponentOptions(MinAreaFraction: 0)));
    }

    [Fact]
    public void ConnectivityDecidesDiagonalNeighbours()
    {
        var img = White(8);
        Square(img, 2, 2, 1, Red, antialias: false);
        Square(img, 3, 3, 1, Red, antialias: false);
        Assert.Equal(1, ComponentCounter.CountComponents(img, new ComponentOptions(MinAreaFraction: 0, Connectivity: 8)));
        Assert.Equal(2, ComponentCounter.CountComponents(img, new ComponentOptions(MinAreaFraction: 0, Connectivity: 4)));
    }

    [Fact]
    public void ThresholdSeparatesFaintPixelsFromForeground()
    {
        var img = White(16);
        Square(img, 2, 2, 4, (230, 230, 230), antialias: false);  // distance 25: background
        Square(img, 9, 9, 4, (255, 255, 200), antialias: false);  // distance 55 in blue: foreground
        Assert.Equal(1, ComponentCounter.CountComponents(img, new ComponentOptions(MinAreaFraction: 0)));
        Assert.Equal(2, ComponentCounter.CountComponents(img, new ComponentOptions(ForegroundThreshold: 20, MinAreaFraction: 0)));
        Assert.Equal(0, ComponentCounter.CountComponents(img, new ComponentOptions(ForegroundThreshold: 60, MinAreaFraction: 0)));
    }

    [Fact]
    public void ComponentSizesAreExactPixelCounts()
    {
        var mask = new bool[5 * 4];
        foreach (var i in new[] { 0, 1, 5, 3, 4, 9, 18 }) mask[i] = true;
        // rows: 11011 / 10001 / 00000 / 00010  -> {0,1,5}, {3,4,9}, {18}
        Assert.Equal(new[] { 3, 3, 1 }, ComponentCounter.ComponentSizes(mask, 5, 4, 8));
    }

    [Fact]
    public void LargeSolidImageIsOneComponentWithoutRecursion()
    {
        var img = new RgbImage(1024, 1024); // all black
        Assert.Equal(1, ComponentCounter.CountComponents(img));
    }

    [Fact]
    public void InvalidOptionsAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ComponentCounter.CountComponents(White(4), new ComponentOptions(Connectivity: 6)));
        Assert.Throws<ArgumentOutOfRangeException>(() => ComponentCounter.CountComponents(White(4), new ComponentOptions(MinAreaFraction: 1.5)));
    }

    [Fact]
    public void RepetitionCountsExtraObjectsAgainstTheBaseSample()
    {
        var baseImg = White(64);
        Circle(baseImg, 32, 32, 14, Red);
        var faithful = UpscaleNearest(baseImg, 2);
        var repeated = Tile(UpscaleNearest(baseImg, 2), 2);   // four copies of the object
        var fewer = White(128);                               // lost the object: clamped at 0

        var summary = RepetitionMetric.Evaluate([(faithful, baseImg), (repeated, baseImg), (fewer, baseImg)]);
        Assert.Equal(new[] { 0, 3, 0 }, summary.Samples.Select(s => s.ExtraObjects));
        Assert.Equal(new[] { 1, 4, 0 }, summary.Samples.Select(s => s.GeneratedComponents));
        Assert.Equal(1.0, summary.MeanExtraObjects, 12);
        Assert.Equal(1.0 / 3, summary.ShareWithExtraObjects, 12);
    }
}
