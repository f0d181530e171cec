using System.Globalization;
using SelfCascade.Cli;
using SelfCascade.Data.Motion;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Cli;
using SelfCascade.Tests.Support;
using SelfCascade.Video.Cascade;
using SelfCascade.Video.Evaluation;
using SelfCascade.Video.Pipelines;

namespace SelfCascade.Tests.Video.Evaluation;

/// <summary>
/// `bench-video` end to end on the embedded emoji model and motion adapter, two tiny synthetic clips: the table's rows,
/// the base row's zero error against itself, and its temporal columns against the metrics computed here from the
/// ground-truth clips and from the library's own videos (same prompt = clip caption, seed = clip index).
/// </summary>
public sealed class BenchVideoCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-benchvid-").FullName;
    public BenchVideoCommandTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    private string Renders() => WriteRenders(_dir);

    /// <summary>Two designs: a red disc and a blue square on white, 64 px, with captions, in ROOT/renders.</summary>
    internal static string WriteRenders(string root)
    {
        var dir = Directory.CreateDirectory(Path.Combine(root, "renders")).FullName;
        void Design(string name, string caption, Func<int, int, bool> inside, (byte, byte, byte) colour)
        {
            var img = new RgbImage(64, 64);
            for (int y = 0; y < 64; y++)
                for (int x = 0; x < 64; x++)
                {
                    var (r, g, b) = inside(x, y) ? colour : ((byte)255, (byte)255, (byte)255);
                    int i = (y * 64 + x) * 3;
                    img.Pixels[i] = r; img.Pixels[i + 1] = g; img.Pixels[i + 2] = b;
                }
            img.SavePng(Path.Combine(dir, name + ".png"));
            File.WriteAllText(Path.Combine(dir, name + ".txt"), caption);
        }
        Design("a", "red circle", (x, y) => (x - 32) * (x - 32) + (y - 32) * (y - 32) < 400, (220, 30, 30));
        Design("b", "blue square", (x, y) => x is > 16 and < 48 && y is > 16 and < 48, (30, 30, 220));
        return dir;
    }

    private static double Cell(string row, int column) =>
        double.Parse(row.Split('|', StringSplitOptions.TrimEntries)[column], CultureInfo.InvariantCulture);

    [Fact]
    public void TheTableHasTheBaseDirectAndCascadeRowsWithTheirTemporalMetrics()
    {
        var renders = Renders();
        var md = Path.Combine(_dir, "video.md");
        var (code, stdout, err) = CliRunner.Run("bench-video", "--renders", renders, "--clips", "2", "--scales", "2", "--frames", "3",
            "--steps", "2", "--out", md);
        Assert.True(code == 0, err);
        Assert.False(File.Exists(md + ".partial"));
        var rows = File.ReadAllLines(md).Where(l => l.StartsWith("| x", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, rows.Count);
        Assert.StartsWith("| x1 | 32 | base |", rows[0]);
        Assert.StartsWith("| x2 | 64 | direct |", rows[1]);
        Assert.StartsWith("| x2 | 64 | self-cascade |", rows[2]);
        Assert.Contains(rows[2], stdout);
        // Columns: 1 scale, 2 size, 3 method, 4 FD, 5 KID, 6 frame diff, 7 ground-truth frame diff, 8 error vs base, 9 s/clip.
        Assert.Equal(0.0, Cell(rows[0], 8));

        double Truth(int size) => Enumerable.Range(0, 2).Average(i =>
            TemporalMetrics.MeanFrameDifference(new MotionClipDataset(renders, 0, 3, size).Clip(i).Frames));
        Assert.Equal(Truth(32), Cell(rows[0], 7), 4);
        Assert.Equal(Truth(64), Cell(rows[1], 7), 4);
        Assert.Equal(Truth(64), Cell(rows[2], 7), 4);

        // The direct row's temporal columns from the library's own videos.
        var captions = Enumerable.Range(0, 2).Select(i => new MotionClipDataset(renders, 0, 3, 32).Clip(i).Caption).ToList();
        using var pipe = VideoPipeline.FromPretrained(ModelOption.EmbeddedModelDir()!, SelfCascade.Cli.Commands.GenerateVideoCommand.EmbeddedMotionDir());
        RgbImage[] Video(int i, int size)
        {
            using var r = VideoCascadeGenerator.Generate(pipe, new VideoRequest
                { Prompt = captions[i], Width = size, Height = size, Frames = 3, Seed = i, Steps = 2, Method = GenerationMethod.Direct });
            return [.. r.Videos[0]];
        }
        var bases = new[] { Video(0, 32), Video(1, 32) };
        var direct = new[] { Video(0, 64), Video(1, 64) };
        Assert.Equal(bases.Average(TemporalMetrics.MeanFrameDifference), Cell(rows[0], 6), 4);
        Assert.Equal(direct.Average(TemporalMetrics.MeanFrameDifference), Cell(rows[1], 6), 4);
        Assert.Equal(Enumerable.Range(0, 2).Average(i => TemporalMetrics.FrameDifferenceError(direct[i], bases[i])), Cell(rows[1], 8), 4);
        Assert.True(Cell(rows[1], 8) > 0);
    }

    [Fact]
    public void BadInputIsOneErrorBeforeAnyWork()
    {
        var (code, _, err) = CliRunner.Run("bench-video", "--renders", Path.Combine(_dir, "missing"), "--out", Path.Combine(_dir, "x.md"));
        Assert.Equal(1, code);
        Assert.Contains("--renders", err);
        Assert.False(File.Exists(Path.Combine(_dir, "x.md")));
        (code, _, err) = CliRunner.Run("bench-video", "--renders", _dir, "--scales", "2,x", "--out", Path.Combine(_dir, "x.md"));
        Assert.Equal(1, code);
        Assert.Contains("'x' is not a whole number", err);
    }
}
