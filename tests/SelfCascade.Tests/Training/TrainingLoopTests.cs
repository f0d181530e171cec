using SelfCascade.Imaging;
using SelfCascade.Tests.Support;
using SelfCascade.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Training;

/// <summary>The shared loop's parts: dataset, data order, AdamW, EMA, loss log and plot, frozen networks.</summary>
public sealed class TrainingLoopTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-loop-").FullName;

    public TrainingLoopTests()
    {
        TorchSetup.Ensure();
        torch.set_num_threads(1);
    }

    public void Dispose()
    {
        torch.set_num_threads(2);
        Directory.Delete(_dir, true);
    }

    [Fact]
    public void DatasetSkipsAndCountsCorruptAndTooSmallFiles()
    {
        var data = Path.Combine(_dir, "data");
        int good = SyntheticImages.Make(data, 24);
        var ds = new ImageFolderDataset(data, 16, CropMode.Random);
        Assert.Equal(good, ds.Count);
        Assert.Equal(1, ds.SkippedUnreadable);
        Assert.Equal(1, ds.SkippedTooSmall);
        Assert.Contains(ds.Skipped, s => s.Path.EndsWith("corrupt.png") && s.Reason.StartsWith("unreadable"));
        Assert.Contains(ds.Skipped, s => s.Path.EndsWith("tiny.png") && s.Reason.Contains("12x12 < 16x16"));
        Assert.Contains("2 skipped", ds.Summary());
        int i = Enumerable.Range(0, ds.Count).First(k => ds.PathAt(k).EndsWith("red-circle-0.png"));
        Assert.Equal("a red circle", ds.CaptionAt(i));

        // Random crops are a function of (seed, sample index); centre crops of the image alone.
        var a = ds.Get(i, 5, 10).Image;
        var b = ds.Get(i, 5, 10).Image;
        Assert.Equal(new long[] { 3, 16, 16 }, a.shape);
        Parity.AssertEqual(a, b, "same seed and index");
        var positions = Enumerable.Range(0, 20).Select(k => ds.Get(i, 5, k).Image).ToList();
        Assert.Contains(positions, p => !p.eq(a).all().item<bool>());
        var center = new ImageFolderDataset(data, 16, CropMode.Center).Get(i, 0, 0).Image;
        var full = RgbImage.Load(ds.PathAt(i)).ToTensor();
        Parity.AssertEqual(center, full[0, .., 4..20, 4..20], "centre crop");
        Assert.InRange(center.min().item<float>(), -1f, 1f);
    }

    [Fact]
    public void EmptyOrUnusableDataFolderIsAClearError()
    {
        var empty = Directory.CreateDirectory(Path.Combine(_dir, "empty")).FullName;
        var e = Assert.Throws<InvalidDataException>(() => new ImageFolderDataset(empty, 32));
        Assert.Contains("no training images", e.Message);
        Assert.Contains("no image files", e.Message);
        File.WriteAllBytes(Path.Combine(empty, "bad.png"), [1, 2, 3]);
        e = Assert.Throws<InvalidDataException>(() => new ImageFolderDataset(empty, 32));
        Assert.Contains("1 unreadable", e.Message);
        Assert.Throws<DirectoryNotFoundException>(() => new ImageFolderDataset(Path.Combine(_dir, "missing"), 32));
    }

    [Fact]
    public void DataOrderIsASeededPermutationPerEpoch()
    {
        var order = new DataOrder(10, 3);
        var epoch0 = Enumerable.Range(0, 10).Select(k => order[k]).ToArray();
        var epoch1 = Enumerable.Range(10, 10).Select(k => order[k]).ToArray();
        Assert.Equal(Enumerable.Range(0, 10), epoch0.Order());
        Assert.Equal(Enumerable.Range(0, 10), epoch1.Order());
        Assert.NotEqual(epoch0, epoch1);
        Assert.NotEqual(Enumerable.Range(0, 10), epoch0);
        // Any position can be asked first (resume), with the same answer.
        Assert.Equal(epoch1[3], new DataOrder(10, 3)[13]);
        Assert.NotEqual(epoch0, Enumerable.Range(0, 10).Select(k => new DataOrder(10, 4)[k]).ToArray());
        Assert.Equal(Enumerable.Range(0, 10), Enumerable.Range(0, 10).Select(k => new DataOrder(10, 3, shuffle: false)[k]));
    }

    [Fact]
    public void EmaFollowsDiffusersDecaySchedule()
    {
        Assert.Equal(0.1, ExponentialMovingAverage.DecayAt(1, 0.999), 12);
        Assert.Equal(2.0 / 11, ExponentialMovingAverage.DecayAt(2, 0.999), 12);
        Assert.Equal(0.999, ExponentialMovingAverage.DecayAt(1_000_000, 0.999), 12);
        using var p = tensor(new float[] { 1, 2 });
        using var shadow = tensor(new float[] { 0, 0 });
        var ema = new ExponentialMovingAverage([("w", p, shadow)], 0.5);
        ema.Update(); // decay min(0.5, 0.1) = 0.1: shadow = 0.1*0 + 0.9*p
        Assert.Equal(new[] { 0.9f, 1.8f }, shadow.data<float>().ToArray());
        p.copy_(tensor(new float[] { 3, 3 }));
        ema.Update(); // decay 2/11: shadow = 2/11*shadow + 9/11*p
        var expected = new[] { 2.0 / 11 * 0.9 + 9.0 / 11 * 3, 2.0 / 11 * 1.8 + 9.0 / 11 * 3 };
        Assert.Equal(expected[0], shadow[0].item<float>(), 5);
        Assert.Equal(expected[1], shadow[1].item<float>(), 5);
        Assert.Equal(2, ema.UpdateCount);
    }

    [Fact]
    public void AdamWMatchesTorchSharpsAdamW()
    {
        manual_seed(0);
        using var w0 = randn(5, 4);
        var mine = new Parameter(w0.clone());
        var theirs = new Parameter(w0.clone());
        using var opt = new SelfCascade.Training.AdamW([("w", mine)], 0.9, 0.999, 1e-8, 0.01);
        var reference = optim.AdamW([theirs], lr: 0.01, weight_decay: 0.01);
        for (int step = 0; step < 5; step++)
        {
            using var target = randn(5, 4);
            foreach (var p in new[] { mine, theirs })
            {
                using var loss = (p - target).pow(2).sum();
                loss.backward();
            }
            opt.Step(0.01);
            opt.ZeroGrad();
            reference.step();
            reference.zero_grad();
        }
        Assert.True(mine.allclose(theirs, rtol: 1e-6, atol: 1e-7), "AdamW differs from torch.optim.AdamW");
        Assert.Equal(5, opt.StepCount);
        Assert.Equal(2, opt.StateTensors().Count());
    }

    [Fact]
    public void TwoStepsChangeOnlyTheTrainableParameters()
    {
        var data = Path.Combine(_dir, "data");
        SyntheticImages.Make(data, 16, variants: 1, withBadFiles: false);
        var ds = new ImageFolderDataset(data, 16);
        using var task = new TwoLayerTask();
        var frozenBefore = task.Frozen.parameters().Select(p => p.detach().clone()).ToList();
        var trainableBefore = task.Head.parameters().Select(p => p.detach().clone()).ToList();
        var result = new Trainer(task, ds, new TrainingOptions { OutputDir = Path.Combine(_dir, "out"), Steps = 2, BatchSize = 2, LearningRate = 1e-2 }).Run();
        Assert.Equal(2, result.FinalStep);
        foreach (var (p, before) in task.Frozen.parameters().Zip(frozenBefore))
        {
            Assert.False(p.requires_grad);
            Assert.Null(p.grad);
            Parity.AssertEqual(p, before, "frozen parameter");
        }
        foreach (var (p, before) in task.Head.parameters().Zip(trainableBefore))
            Assert.False(p.eq(before).all().item<bool>(), "a trainable parameter did not change");

        // The CSV (step, loss, lr, seconds) and the PNG plot were written.
        var rows = LossLog.Read(Path.Combine(_dir, "out", Trainer.LossCsv));
        Assert.Equal(new long[] { 1, 2 }, rows.Select(r => r.Step));
        Assert.All(rows, r => Assert.True(r.Loss > 0 && r.LearningRate == 1e-2 && r.Seconds >= 0));
        var png = RgbImage.Load(Path.Combine(_dir, "out", Trainer.LossPng));
        Assert.Equal(LossPlot.Width, png.Width);
    }

    [Fact]
    public void CheckpointsAreAtomicAndOnlyTheNewestAreKept()
    {
        var store = new CheckpointStore(Path.Combine(_dir, "ck"), keep: 2);
        using var t = tensor(new float[] { 1, 2, 3 });
        var groups = new Dictionary<string, IEnumerable<KeyValuePair<string, Tensor>>> { ["g"] = [new("x", t)] };
        foreach (var step in new long[] { 1, 2, 3 }) store.Save(new CheckpointState { Step = step }, groups);
        Assert.Equal(new long[] { 2, 3 }, store.List().Select(c => c.Step));
        // A write that died half-way leaves a temporary folder: never listed, never picked to resume from.
        Directory.CreateDirectory(Path.Combine(store.Directory, ".tmp-step-00000004-1"));
        File.WriteAllText(Path.Combine(store.Directory, ".tmp-step-00000004-1", "g.safetensors"), "partial");
        Assert.Equal(3, store.Latest()!.Value.Step);
        using var ck = CheckpointStore.Open(store.Latest()!.Value.Path);
        using var x = ck.Reader("g")("x")!;
        Parity.AssertEqual(x, t, "restored tensor");
        // A checkpoint folder without its state (write cut before the end) is refused with a clear error.
        Directory.CreateDirectory(Path.Combine(store.Directory, CheckpointStore.FolderName(9)));
        var e = Assert.Throws<CheckpointException>(() => CheckpointStore.Open(Path.Combine(store.Directory, CheckpointStore.FolderName(9))));
        Assert.Contains("state.json is missing", e.Message);
    }

    [Fact]
    public void LossPlotSmoothsAndDrawsAxes()
    {
        var smooth = LossPlot.Smooth([1, 1, 1, 1], 0.9);
        Assert.All(smooth, v => Assert.Equal(1.0, v, 12)); // debiased: a constant stays constant
        var records = Enumerable.Range(1, 200).Select(i => new LossRecord(i, 1.0 / i + 0.05 * Math.Sin(i), 1e-4, i * 0.1)).ToList();
        var path = Path.Combine(_dir, "plot.png");
        LossPlot.Save(path, records);
        var img = RgbImage.Load(path);
        Assert.Equal((LossPlot.Width, LossPlot.Height), (img.Width, img.Height));
        // Blue curve pixels and black axis pixels are present.
        int blue = 0, black = 0;
        for (int k = 0; k < img.Pixels.Length; k += 3)
        {
            var (r, g, b) = (img.Pixels[k], img.Pixels[k + 1], img.Pixels[k + 2]);
            if (b > 150 && r < 80) blue++;
            if (r < 30 && g < 30 && b < 30) black++;
        }
        Assert.True(blue > 200, $"{blue} curve pixels");
        Assert.True(black > 500, $"{black} axis/label pixels");
    }

    /// <summary>A frozen 1x1 conv feeding a trainable one; loss = MSE to the input.</summary>
    private sealed class TwoLayerTask : TrainingTask
    {
        public Conv2d Frozen { get; } = nn.Conv2d(3, 4, 1);
        public Conv2d Head { get; } = nn.Conv2d(4, 3, 1);
        public override Device Device => CPU;
        public override IReadOnlyList<(string Name, Parameter Parameter)> TrainableParameters =>
            Head.named_parameters().Select(p => ("head." + p.name, p.parameter)).ToList();
        public override IReadOnlyList<nn.Module> FrozenModules => [Frozen];
        public override Tensor Loss(TrainingBatch batch, Generator generator)
        {
            using var scope = NewDisposeScope();
            var noise = randn(batch.Images.shape, generator: generator) * 0.1;
            var y = Head.call(nn.functional.silu(Frozen.call(batch.Images + noise)));
            return nn.functional.mse_loss(y, batch.Images).MoveToOuterDisposeScope();
        }
        public override void Dispose()
        {
            Frozen.Dispose();
            Head.Dispose();
            base.Dispose();
        }
    }
}
