using SelfCascade.Data.Motion;
using SelfCascade.Imaging;

namespace SelfCascade.Tests.Data.Motion;

/// <summary>The synthetic motion clips move exactly as their stored ground truth says.</summary>
public sealed class MotionClipTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-motion-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>A 128 px design: white, a dark 8x8 blob at design pixels [40,48)x[24,32) (clip centre (11, 7)) and a red bar at [60,100)x[70,90).</summary>
    private static RgbImage Design(bool withBar = true)
    {
        var img = new RgbImage(128, 128);
        Array.Fill(img.Pixels, (byte)255);
        void Fill(int x0, int y0, int x1, int y1, byte r, byte g, byte b)
        {
            for (int y = y0; y < y1; y++) for (int x = x0; x < x1; x++) { int o = (y * 128 + x) * 3; img.Pixels[o] = r; img.Pixels[o + 1] = g; img.Pixels[o + 2] = b; }
        }
        Fill(40, 24, 48, 32, 0, 0, 0);
        if (withBar) Fill(60, 70, 100, 90, 220, 30, 40);
        return img;
    }

    [Theory]
    [InlineData(MotionKind.MoveRight, 2, 0)]
    [InlineData(MotionKind.MoveLeft, -1, 0)]
    [InlineData(MotionKind.MoveDown, 0, 1)]
    [InlineData(MotionKind.MoveUp, 0, -2)]
    public void MovingByKPixelsShiftsPixelsByK(MotionKind kind, int dx, int dy)
    {
        int k = Math.Abs(dx + dy);
        var track = MotionClipSynthesizer.Track(kind, new Dictionary<string, double> { ["pixels_per_frame"] = k }, 4, 32);
        var frames = MotionClipSynthesizer.Render(Design(), track, 32);
        for (int t = 1; t < 4; t++)
        {
            int checkedPixels = 0;
            for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++)
            {
                int sx = x - dx * t, sy = y - dy * t;
                if (sx < 0 || sy < 0 || sx >= 32 || sy >= 32) continue;
                for (int c = 0; c < 3; c++) Assert.Equal(frames[0][sx, sy, c], frames[t][x, y, c]);
                checkedPixels++;
            }
            Assert.True(checkedPixels >= 32 * 32 - 32 * 3 * Math.Abs(dx + dy) * t);
        }
        Assert.Equal((11 + dx * 3 + 0.0, 7 + dy * 3 + 0.0), track.Frames[3].Apply(11, 7));
    }

    [Theory]
    [InlineData(MotionKind.ZoomIn)]
    [InlineData(MotionKind.ZoomOut)]
    [InlineData(MotionKind.RotateClockwise)]
    [InlineData(MotionKind.RotateCounterclockwise)]
    [InlineData(MotionKind.Bounce)]
    [InlineData(MotionKind.MoveRight)]
    public void TheDarkBlobFollowsTheStoredTransform(MotionKind kind)
    {
        var clip = MotionClipSynthesizer.Make(Design(withBar: false), "test blob", kind, seed: 3);
        Assert.Equal(8, clip.Frames.Count);
        Assert.All(clip.Frames, f => Assert.Equal((32, 32), (f.Width, f.Height)));
        for (int t = 0; t < 8; t++)
        {
            var (ex, ey) = clip.Motion.Frames[t].Apply(11, 7);
            var (cx, cy) = DarkCentroid(clip.Frames[t]);
            Assert.True(Math.Abs(cx - ex) < 0.25 && Math.Abs(cy - ey) < 0.25, $"{kind} frame {t}: blob at ({cx:F2}, {cy:F2}), track says ({ex:F2}, {ey:F2})");
            // The frame-to-frame map agrees with the per-frame maps.
            if (t > 0)
            {
                var m = clip.Motion.Between(t - 1, t);
                var (px, py) = clip.Motion.Frames[t - 1].Apply(11, 7);
                Assert.Equal(ex, m[0] * px + m[1] * py + m[2], 9);
                Assert.Equal(ey, m[3] * px + m[4] * py + m[5], 9);
            }
        }
        // The motion is visible: the blob really moved between the first and last frame.
        var (x0, y0) = clip.Motion.Frames[0].Apply(11, 7);
        var (x7, y7) = clip.Motion.Frames[7].Apply(11, 7);
        if (kind != MotionKind.Bounce) Assert.True(Math.Abs(x7 - x0) + Math.Abs(y7 - y0) > 1.5, $"{kind}: the blob barely moves");
    }

    [Fact]
    public void ZoomAndRotationMagnitudesAreWhatTheCaptionSays()
    {
        var zin = MotionClipSynthesizer.Make(Design(), "red heart", MotionKind.ZoomIn, 1).Motion;
        var zout = MotionClipSynthesizer.Make(Design(), "red heart", MotionKind.ZoomOut, 1).Motion;
        Assert.True(zin.Frames[7].Affine[0] > zin.Frames[0].Affine[0] * 1.3);
        Assert.True(zout.Frames[7].Affine[0] < zout.Frames[0].Affine[0] / 1.3);
        var cw = MotionClipSynthesizer.Make(Design(), "red heart", MotionKind.RotateClockwise, 1).Motion;
        // Clockwise on screen (y down): the top of the design moves right, i.e. sin > 0 in [a b; c d] = s[cos -sin; sin cos].
        Assert.True(cw.Frames[1].Affine[3] > 0);
    }

    [Fact]
    public void ColourShiftRotatesHueAndKeepsWhite()
    {
        var clip = MotionClipSynthesizer.Make(Design(), "red heart", MotionKind.ColourShift, seed: 5);
        Assert.Equal("red heart, changing colour", clip.Caption);
        double degrees = clip.Motion.Parameters["hue_degrees_per_frame"];
        Assert.InRange(degrees, 20, 40);
        for (int t = 0; t < 8; t++)
        {
            Assert.Equal([1, 0, 0, 0, 1, 0], clip.Motion.Frames[t].Affine);
            // The background stays white.
            for (int c = 0; c < 3; c++) Assert.Equal(255, clip.Frames[t][0, 0, c]);
            // Each pixel is frame 0's pixel through the stored colour matrix (to rounding).
            var m = clip.Motion.Frames[t].Colour;
            for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++)
            {
                double r = clip.Frames[0][x, y, 0] / 255.0, g = clip.Frames[0][x, y, 1] / 255.0, b = clip.Frames[0][x, y, 2] / 255.0;
                for (int c = 0; c < 3; c++)
                {
                    double want = Math.Clamp((m[c * 3] * r + m[c * 3 + 1] * g + m[c * 3 + 2] * b) * 255, 0, 255);
                    Assert.True(Math.Abs(clip.Frames[t][x, y, c] - want) <= 1.01, $"frame {t} ({x},{y}) channel {c}: {clip.Frames[t][x, y, c]} vs {want:F1}");
                }
            }
        }
        // The red bar (design (60..100, 70..90) -> clip (20, 20)) is no longer red after a few frames.
        Assert.True(clip.Frames[0][20, 20, 0] > 200 && clip.Frames[0][20, 20, 1] < 60);
        Assert.True(clip.Frames[4][20, 20, 0] < clip.Frames[0][20, 20, 0] - 40);
    }

    [Fact]
    public void ClipsAreDeterministicPerSeedAndCaptioned()
    {
        var a = MotionClipSynthesizer.Make(Design(), "red heart", MotionKind.ZoomIn, seed: 7);
        var b = MotionClipSynthesizer.Make(Design(), "red heart", MotionKind.ZoomIn, seed: 7);
        var c = MotionClipSynthesizer.Make(Design(), "red heart", MotionKind.ZoomIn, seed: 8);
        Assert.Equal("red heart, zooming in", a.Caption);
        Assert.Equal(a.Motion.Parameters, b.Motion.Parameters);
        for (int t = 0; t < 8; t++) Assert.Equal(a.Frames[t].Pixels, b.Frames[t].Pixels);
        Assert.NotEqual(a.Motion.Parameters["scale_per_frame"], c.Motion.Parameters["scale_per_frame"]);
    }

    [Fact]
    public void DatasetDrawsDeterministicClipsAndWritesFrameFolders()
    {
        var renders = Directory.CreateDirectory(Path.Combine(_dir, "render")).FullName;
        Design().SavePng(Path.Combine(renders, "set__blob.png"));
        File.WriteAllText(Path.Combine(renders, "set__blob.txt"), "black blob");
        var other = new RgbImage(128, 128); Array.Fill(other.Pixels, (byte)200);
        other.SavePng(Path.Combine(renders, "set__grey.png"));
        File.WriteAllText(Path.Combine(renders, "set__grey.txt"), "grey square");

        var ds = new MotionClipDataset(renders, seed: 11);
        var again = new MotionClipDataset(renders, seed: 11);
        var kinds = new HashSet<MotionKind>();
        for (int i = 0; i < 40; i++)
        {
            Assert.Equal(ds.Choose(i), again.Choose(i));
            kinds.Add(ds.Choose(i).Kind);
        }
        Assert.True(kinds.Count >= 8, $"40 clips used only {kinds.Count} motion kinds");
        Assert.NotEqual(ds.Choose(0), new MotionClipDataset(renders, seed: 12).Choose(0));

        var outDir = Path.Combine(_dir, "clips");
        ds.WriteClips(outDir, 3);
        for (int i = 0; i < 3; i++)
        {
            var dir = Path.Combine(outDir, $"clip_{i:D5}");
            var clip = ds.Clip(i);
            Assert.Equal(clip.Caption, File.ReadAllText(Path.Combine(dir, "caption.txt")));
            Assert.Matches("^(black blob|grey square), ", clip.Caption);
            for (int t = 0; t < 8; t++) Assert.Equal(clip.Frames[t].Pixels, RgbImage.Load(Path.Combine(dir, $"frame_{t:D2}.png")).Pixels);
            var track = MotionClipDataset.ReadTrack(Path.Combine(dir, "motion.json"));
            Assert.Equal(clip.Motion.Kind, track.Kind);
            for (int t = 0; t < 8; t++) Assert.Equal(clip.Motion.Frames[t].Affine, track.Frames[t].Affine);
        }
    }

    /// <summary>Darkness-weighted centroid (pixel centres at +0.5) of pixels darker than the background.</summary>
    private static (double X, double Y) DarkCentroid(RgbImage img)
    {
        double sw = 0, sx = 0, sy = 0;
        for (int y = 0; y < img.Height; y++)
        for (int x = 0; x < img.Width; x++)
        {
            double dark = 255 - Math.Max(img[x, y, 0], Math.Max(img[x, y, 1], img[x, y, 2]));
            if (dark <= 0) continue;
            sw += dark; sx += dark * (x + 0.5); sy += dark * (y + 0.5);
        }
        return (sx / sw, sy / sw);
    }
}
