using SelfCascade.Evaluation;
using SelfCascade.Evaluation.PromptGrid;
using SelfCascade.Imaging;
using SelfCascade.Tests.Support;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Cli;

/// <summary>
/// `selfcascade prompt-grid` on the tiny SD folder (native 32 px) and a tiny feature net: the grid's layout, its cells
/// bit for bit against independent `generate` runs, and the report's classes and accuracies against the net itself.
/// Bit-for-bit comparisons run alone (see <see cref="AloneCollection"/>).
/// </summary>
[Collection(AloneCollection.Name)]
public sealed class PromptGridCommandTests : IDisposable
{
    private const int Native = 32, Size = 64, Steps = 3;
    private static readonly string[] Prompts = ["alpha", "beta", "gamma"];
    private static readonly long[] Seeds = [0, 1];
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-pgrid-").FullName;
    private readonly string _model;

    public PromptGridCommandTests()
    {
        TorchSetup.Ensure();
        _model = TinyModelFolders.BuildSd(Path.Combine(_dir, "model"));
    }

    public void Dispose() => Directory.Delete(_dir, true);

    private RgbImage Generate(string prompt, long seed, int size)
    {
        var file = Path.Combine(_dir, $"gen-{prompt}-{seed}-{size}.png");
        var (code, _, err) = CliRunner.Run("generate", "--model", _model, "--prompt", prompt, "--seed", $"{seed}", "--steps", $"{Steps}",
            "--guidance", "7.5", "--size", $"{size}x{size}", "--out", file);
        Assert.True(code == 0, err);
        return RgbImage.Load(file);
    }

    /// <summary>For each image: the index of the top logit, and the rank of <paramref name="label"/> (classes scored strictly higher).</summary>
    private static (int Top, int Rank)[] Classify(FeatureNet net, IReadOnlyList<RgbImage> images, IReadOnlyList<int> labels)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var logits = net.forward(net.Preprocess(images)).to(ScalarType.Float64);
        var rows = Enumerable.Range(0, images.Count).Select(i => logits[i].data<double>().ToArray()).ToArray();
        return rows.Select((l, i) => (Array.IndexOf(l, l.Max()), labels[i] < 0 ? -1 : l.Count(v => v > l[labels[i]]))).ToArray();
    }

    [Fact]
    public void GridCellsAreTheGenerateImagesAndTheReportCountsWhatTheNetSays()
    {
        // Independent runs of `generate`: native size (what the base stage must be) and the cascade at the target size.
        var native = Prompts.SelectMany(p => Seeds.Select(s => Generate(p, s, Native))).ToList();
        var cascade = Prompts.SelectMany(p => Seeds.Select(s => Generate(p, s, Size))).ToList();

        // A random 6-class net whose class names are chosen after looking at it, so the counts are not all zero:
        // "alpha" = the top class of alpha's native seed-0 image, "beta" another class; "gamma" is no class.
        using var net = new FeatureNet(new FeatureNetConfig(6, InputSize: 16, BaseChannels: 8, EmbeddingDim: 8), seed: 3);
        int alpha = Classify(net, [native[0]], [0])[0].Top;
        int beta = Classify(net, [cascade[3]], [0])[0].Top;
        if (beta == alpha) beta = (alpha + 1) % 6;
        var names = Enumerable.Range(0, 6).Select(i => i == alpha ? "alpha" : i == beta ? "beta" : $"other {i}").ToList();
        net.ClassNames = names;
        var netPath = Path.Combine(_dir, "net.safetensors");
        net.Save(netPath);

        var promptsFile = Path.Combine(_dir, "prompts.txt");
        File.WriteAllText(promptsFile, "alpha\n\n  beta \ngamma\n");
        var grid = Path.Combine(_dir, "grid.png");
        var report = Path.Combine(_dir, "grid.md");
        var (code, output, err) = CliRunner.Run("prompt-grid", "--model", _model, "--prompts-file", promptsFile, "--seeds", "0,1",
            "--size", $"{Size}", "--steps", $"{Steps}", "--guidance", "7.5", "--feature-net", netPath, "--out", grid, "--report", report, "--sensitivity");
        Assert.True(code == 0, err);
        Assert.Contains(grid, output);
        // Progress per image on stderr.
        Assert.Contains("[6/6] \"gamma\" seed 1: 32 -> 64 px", err);

        // Layout: one row per prompt, per seed the native cell (nearest-neighbour x2) then the cascade cell, a label
        // strip under each (ImageGrid: 8 px padding, label height 2 x (glyph 7 + 4) x scale 1).
        var image = RgbImage.Load(grid);
        int pad = 8, labelH = 2 * (BitmapFont.GlyphHeight + 4);
        Assert.Equal(4 * (Size + pad) + pad, image.Width);
        Assert.Equal(3 * (Size + labelH + pad) + pad, image.Height);
        for (int row = 0; row < Prompts.Length; row++)
            for (int s = 0; s < Seeds.Length; s++)
            {
                int k = row * Seeds.Length + s, oy = pad + row * (Size + labelH + pad);
                int nx = pad + 2 * s * (Size + pad), cx = nx + Size + pad;
                // Bit-exact: every pixel of the native cell is its generate pixel (x / 2, y / 2); the cascade cell is generate --size.
                for (int y = 0; y < Size; y++)
                    for (int x = 0; x < Size; x++)
                        for (int c = 0; c < 3; c++)
                        {
                            Assert.True(native[k][x * Native / Size, y * Native / Size, c] == image[nx + x, oy + y, c], $"native cell {k} differs at ({x}, {y})");
                            Assert.True(cascade[k][x, y, c] == image[cx + x, oy + y, c], $"cascade cell {k} differs at ({x}, {y})");
                        }
            }

        // The report against the net itself.
        int[] labels = Prompts.SelectMany(p => Seeds.Select(_ => names.IndexOf(p))).ToArray();
        var n = Classify(net, native, labels);
        var c2 = Classify(net, cascade, labels);
        var md = File.ReadAllText(report);
        string Match(int rank) => rank < 0 ? "not a class" : rank == 0 ? "yes" : $"no (rank {rank + 1})";
        for (int k = 0; k < labels.Length; k++)
            Assert.Contains($"| {Prompts[k / 2]} | {Seeds[k % 2]} | {names[n[k].Top]} | {names[c2[k].Top]} | {Match(n[k].Rank)} | {Match(c2[k].Rank)} |", md);
        var known = Enumerable.Range(0, labels.Length).Where(k => labels[k] >= 0).ToList();
        Assert.Equal(4, known.Count);
        int nTop1 = known.Count(k => n[k].Rank == 0), nTop5 = known.Count(k => n[k].Rank < 5);
        int cTop1 = known.Count(k => c2[k].Rank == 0), cTop5 = known.Count(k => c2[k].Rank < 5);
        Assert.True(nTop1 >= 1, "alpha's native seed-0 image is top-1 by construction");
        Assert.Contains(FormattableString.Invariant($"| native 32 px | {nTop1}/4 ({100.0 * nTop1 / 4:F1} %) | {nTop5}/4 ({100.0 * nTop5 / 4:F1} %) |"), md);
        Assert.Contains(FormattableString.Invariant($"| cascade 64 px | {cTop1}/4 ({100.0 * cTop1 / 4:F1} %) | {cTop5}/4 ({100.0 * cTop5 / 4:F1} %) |"), md);
        Assert.Contains("one of its 6 classes; chance: top-1 16.7 %, top-5 83.3 %", md);
        Assert.Contains("left out of the accuracy): \"gamma\".", md);

        // --sensitivity: the library's table for the grid's prompts, appended.
        using var pipe = SelfCascade.Pipelines.StableDiffusionPipeline.FromPretrained(_model);
        var rows = ConditioningSensitivity.Measure(pipe, Prompts);
        Assert.Contains("## Prompt sensitivity by noise level", md);
        Assert.Contains(ConditioningSensitivity.Markdown(Prompts, rows), md);
        Assert.All(rows, r => Assert.All(r.PerPrompt, v => Assert.True(v > 0)));
    }

    [Fact]
    public void MissingInputsAreOneClearError()
    {
        var grid = Path.Combine(_dir, "g.png");
        var (code, _, err) = CliRunner.Run("prompt-grid", "--model", _model, "--prompts-file", Path.Combine(_dir, "none.txt"), "--out", grid);
        Assert.Equal(1, code);
        Assert.Contains("none.txt", err);
        (code, _, err) = CliRunner.Run("prompt-grid", "--model", _model, "--out", grid);
        Assert.Equal(1, code);
        Assert.Contains("no prompts", err);
        (code, _, err) = CliRunner.Run("prompt-grid", "--model", _model, "--prompt", "alpha", "--feature-net", Path.Combine(_dir, "nonet.safetensors"), "--out", grid);
        Assert.Equal(1, code);
        Assert.Contains("nonet.safetensors", err);
        (code, _, err) = CliRunner.Run("prompt-grid", "--model", _model, "--prompt", "alpha", "--seeds", "0,x", "--out", grid);
        Assert.Equal(1, code);
        Assert.Contains("'x'", err);
        Assert.False(File.Exists(grid));
    }
}
