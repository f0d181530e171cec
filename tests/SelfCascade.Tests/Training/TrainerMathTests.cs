using System.Text.Json.Nodes;
using SelfCascade.Tests.Support;
using SelfCascade.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Training;

/// <summary>
/// The loop's arithmetic, value for value: gradient accumulation (mean over micro-batches), global-norm clipping,
/// linear warm-up and AdamW, against torch.optim.AdamW + clip_grad_norm_ on two tiny parameters
/// (tests/reference/training/make_training_math.py → training_math.json).
/// </summary>
public sealed class TrainerMathTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-trmath-").FullName;
    private static readonly JsonNode Reference = JsonNode.Parse(File.ReadAllText(
        Path.Combine(Fixtures.RepoRoot, "tests", "reference", "training", "training_math.json")))!;

    public TrainerMathTests() => TorchSetup.Ensure();

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void WarmUpIsLinearFromZeroAndReachesTheFullRateAtItsLastStep()
    {
        var o = new TrainingOptions { OutputDir = _dir, LearningRate = 1e-3, WarmupSteps = 4 };
        Assert.Equal([0.25e-3, 0.5e-3, 0.75e-3, 1e-3, 1e-3, 1e-3], new long[] { 1, 2, 3, 4, 5, 100 }.Select(s => o.LearningRateAt(s)));
        var none = o with { WarmupSteps = 0 };
        Assert.Equal([1e-3, 1e-3], new long[] { 1, 2 }.Select(s => none.LearningRateAt(s)));
    }

    [Theory]
    [InlineData("no_clip", 0.0)]     // accumulation = mean of the micro-batch gradients, warm-up, AdamW
    [InlineData("clip_1", 1.0)]      // the global norm (6.4, 5.3, 4.9) is clipped to 1 over both tensors together
    [InlineData("clip_100", 100.0)]  // a norm below the limit is left alone
    public void StepsMatchTorchAdamWWithAccumulationClippingAndWarmUp(string run, double maxNorm)
    {
        var data = Path.Combine(_dir, "data");
        SyntheticImages.Make(data, 16, variants: 1, withBadFiles: false);
        var ds = new ImageFolderDataset(data, 16);
        var r = Reference;
        using var task = new LinearTask(Floats(r["G"]!).Select(g => g.ToArray()).ToArray(), Row(r["a0"]!), Row(r["b0"]!));
        var betas = Row(r["betas"]!);
        var options = new TrainingOptions
        {
            OutputDir = Path.Combine(_dir, run), Steps = (int)r["steps"]!, BatchSize = 1, GradientAccumulation = (int)r["accum"]!,
            LearningRate = (double)r["lr"]!, WarmupSteps = (int)r["warmup"]!, WeightDecay = (double)r["weight_decay"]!,
            Beta1 = betas[0], Beta2 = betas[1], Epsilon = (double)r["eps"]!, MaxGradNorm = maxNorm, CaptionDropout = 0,
        };
        new Trainer(task, ds, options).Run();

        var expected = r["runs"]![run]!.AsArray();
        Assert.Equal(expected.Count, task.AfterStep.Count);
        var log = LossLog.Read(Path.Combine(options.OutputDir, Trainer.LossCsv));
        for (int i = 0; i < expected.Count; i++)
        {
            var e = expected[i]!;
            var (a, b) = task.AfterStep[i];
            AssertNear(Row(e["a"]!), a, $"{run}: a after step {i + 1}");
            AssertNear(Row(e["b"]!), b, $"{run}: b after step {i + 1}");
            Assert.Equal((double)e["lr"]!, log[i].LearningRate, 12);
            Assert.Equal((double)e["loss"]!, log[i].Loss, 4); // the logged loss is the micro-batch mean, unscaled
        }
    }

    private static void AssertNear(double[] expected, double[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double err = expected.Zip(actual, (x, y) => Math.Abs(x - y)).Max();
        Assert.True(err <= 1e-5, $"{what}: [{string.Join(", ", actual)}] vs torch [{string.Join(", ", expected)}] (max diff {err:G3})");
    }

    private static double[] Row(JsonNode n) => n.AsArray().Select(x => (double)x!).ToArray();
    private static IEnumerable<double[]> Floats(JsonNode n) => n.AsArray().Select(x => Row(x!));

    /// <summary>Parameters a (2,) and b (1,); micro-batch c has loss sum(G[c]·w) + |w|²/2, so its gradient is G[c] + w.</summary>
    private sealed class LinearTask : TrainingTask
    {
        private readonly double[][] _g;
        private readonly Parameter _a, _b;
        private int _calls;

        public LinearTask(double[][] g, double[] a0, double[] b0)
        {
            _g = g;
            _a = new Parameter(tensor(a0.Select(x => (float)x).ToArray()));
            _b = new Parameter(tensor(b0.Select(x => (float)x).ToArray()));
        }

        public List<(double[] A, double[] B)> AfterStep { get; } = new();
        public override Device Device => CPU;
        public override IReadOnlyList<(string Name, Parameter Parameter)> TrainableParameters => [("a", _a), ("b", _b)];
        public override IReadOnlyList<nn.Module> FrozenModules => [];

        public override Tensor Loss(TrainingBatch batch, Generator generator)
        {
            using var scope = NewDisposeScope();
            var g = tensor(_g[_calls++].Select(x => (float)x).ToArray());
            var w = cat([_a, _b]);
            return ((g * w).sum() + 0.5 * (w * w).sum()).MoveToOuterDisposeScope();
        }

        public override void AfterOptimizerStep(long step) =>
            AfterStep.Add((_a.data<float>().Select(x => (double)x).ToArray(), _b.data<float>().Select(x => (double)x).ToArray()));

        public override void Dispose()
        {
            _a.Dispose();
            _b.Dispose();
            base.Dispose();
        }
    }
}
