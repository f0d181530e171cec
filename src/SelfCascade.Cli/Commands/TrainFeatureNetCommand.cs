using System.CommandLine;
using System.Globalization;
using System.Text;
using SelfCascade.Data;
using SelfCascade.Evaluation;
using SelfCascade.Imaging;
using SelfCascade.IO;
using static TorchSharp.torch;

namespace SelfCascade.Cli.Commands;

/// <summary>
/// `selfcascade train-feature-net`: the quality benchmark's feature network, a classifier of one split's captions
/// (both sets' designs of a caption are one class) trained on their renders at several sizes with augmentation,
/// then measured on held-out images (the 256 px renders, never trained on, resized to each size and perturbed).
/// </summary>
public static class TrainFeatureNetCommand
{
    /// <summary>The training augmentation (docs/BENCHMARKS.md): zoom 0.7-1.3, colour jitter, blur, noise; no mirror ("clockwise" is a caption word).</summary>
    public static FeatureNetTrainOptions TrainingAugmentation => new()
    {
        MinCropScale = 0.7, MaxCropScale = 1.3, HorizontalFlip = false,
        Brightness = 0.1, Contrast = 0.2, Saturation = 0.2, BlurMaxSigma = 1.5, NoiseMaxStd = 0.05,
    };

    /// <summary>The held-out perturbation: milder than training, drawn from its own seed.</summary>
    public static FeatureNetTrainOptions HeldOutPerturbation => new()
    {
        MinCropScale = 0.8, MaxCropScale = 1.2, HorizontalFlip = false,
        Brightness = 0.05, Contrast = 0.1, Saturation = 0.1, BlurMaxSigma = 1.0, NoiseMaxStd = 0.03,
    };

    public const int HeldOutSeed = 12345;

    public static Command Create(CliConsole console)
    {
        var data = new Option<string>("--data") { Description = "Dataset folder from `selfcascade data` (with 256 px renders for the held-out test)", Required = true };
        var output = new Option<string>("--out") { Description = "Feature network file (.safetensors)", DefaultValueFactory = _ => "feature-net.safetensors" };
        var split = new Option<string>("--split") { Description = "Split whose captions are the classes", DefaultValueFactory = _ => "test" };
        var sizes = new Option<string>("--sizes") { Description = "Render sizes to train on (each resized to the input)", DefaultValueFactory = _ => "32,64,128" };
        var heldOutSource = new Option<int>("--held-out-source") { Description = "Render size the held-out images are made from (not trained on)", DefaultValueFactory = _ => 256 };
        var epochs = new Option<int>("--epochs") { Description = "Epochs (passes over the renders, fresh augmentation each)", DefaultValueFactory = _ => 60 };
        var batch = new Option<int>("--batch") { Description = "Batch size", DefaultValueFactory = _ => 64 };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate (cosine decay to 0)", DefaultValueFactory = _ => 3e-3 };
        var input = new Option<int>("--input-size") { Description = "Network input size", DefaultValueFactory = _ => 64 };
        var channels = new Option<int>("--channels") { Description = "Base channels", DefaultValueFactory = _ => 16 };
        var embedding = new Option<int>("--embedding") { Description = "Feature dimension", DefaultValueFactory = _ => 128 };
        var seed = new Option<int>("--seed") { Description = "Seed", DefaultValueFactory = _ => 0 };
        var every = new Option<int>("--checkpoint-every") { Description = "Save OUT.ckpt.safetensors every N epochs (0 = never)", DefaultValueFactory = _ => 2 };
        var resume = new Option<bool>("--resume") { Description = "Continue from OUT.ckpt.safetensors" };
        var report = new Option<string?>("--report") { Description = "Markdown file for the accuracy table" };
        var export = new Option<string?>("--export-held-out") { Description = "Write a small held-out set (32 px, uint8) as safetensors for tests" };
        var exportCount = new Option<int>("--export-count") { Description = "Images in the exported held-out set", DefaultValueFactory = _ => 96 };
        var cmd = new Command("train-feature-net", "Train the quality benchmark's feature network (caption classifier) and measure its top-1/top-5 on held-out renders")
        {
            data, output, split, sizes, heldOutSource, epochs, batch, lr, input, channels, embedding, seed, every, resume, report, export, exportCount,
        };
        cmd.SetAction(p => console.Guard(p.GetValue(CliApp.LibTorchOption), () =>
        {
            var dataDir = p.GetValue(data)!;
            var out_ = p.GetValue(output)!;
            var splitValue = Enum.Parse<Split>(p.GetValue(split)!, ignoreCase: true);
            var classes = DesignClasses.FromDataset(dataDir, splitValue);
            var sizeList = DataCommand.ParseSizes(p.GetValue(sizes)!);
            var train = classes.LoadRenders(dataDir, splitValue, sizeList);
            if (train.Count == 0) throw new InvalidDataException($"{dataDir}: no {splitValue} renders at {string.Join(",", sizeList)} px");
            console.Error.WriteLine($"{classes.Captions.Count} classes ({classes.Entries.Count} designs), {train.Count} renders");

            var ckpt = out_ + ".ckpt.safetensors";
            var o = TrainingAugmentation with
            {
                Epochs = p.GetValue(epochs), BatchSize = p.GetValue(batch), LearningRate = p.GetValue(lr), CosineSchedule = true,
                InputSize = p.GetValue(input), BaseChannels = p.GetValue(channels), EmbeddingDim = p.GetValue(embedding), Seed = p.GetValue(seed),
            };
            if (p.GetValue(resume) && File.Exists(ckpt))
            {
                var start = int.Parse(File.ReadAllText(ckpt + ".epoch").Trim(), CultureInfo.InvariantCulture);
                o = o with { InitialNet = FeatureNet.Load(ckpt), StartEpoch = start };
                console.Error.WriteLine($"resuming at epoch {start}");
            }
            int saveEvery = p.GetValue(every);
            var sw = System.Diagnostics.Stopwatch.StartNew();
            var progress = new Progress(e => console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"epoch {e.Epoch + 1}/{o.Epochs}: loss {e.Loss:F3}, train acc {e.Accuracy:P1}, {sw.Elapsed.TotalMinutes:F1} min")));
            using var result = new TrainedNet(FeatureNetTrainer.Train(train, o, progress, (net, epoch) =>
            {
                if (saveEvery > 0 && (epoch % saveEvery == 0 || epoch == o.Epochs))
                {
                    net.ClassNames = classes.Captions;
                    net.Save(ckpt);
                    File.WriteAllText(ckpt + ".epoch", epoch.ToString(CultureInfo.InvariantCulture));
                }
                // Ctrl+C / SIGTERM stop after the epoch (and its checkpoint, when one was due); --resume continues.
                console.Cancellation.ThrowIfCancellationRequested();
            }));
            var trained = result.Value.Net;
            trained.ClassNames = classes.Captions;
            trained.Save(out_);

            // Held-out: the larger renders (never trained on) resized to each size and perturbed with their own seed.
            var sources = classes.LoadRenders(dataDir, splitValue, [p.GetValue(heldOutSource)]);
            var sb = new StringBuilder();
            // A resume of a finished run trains no epoch (it re-measures and re-exports), so there may be no history.
            var lossNote = result.Value.History.Count > 0
                ? string.Create(CultureInfo.InvariantCulture, $"final training loss {result.Value.History[^1].Loss:F3} (augmented), {sw.Elapsed.TotalMinutes:F0} min")
                : "resumed after its last epoch: no epoch trained in this run";
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"Feature network `{Path.GetFileName(out_)}`: {classes.Captions.Count} classes (the {splitValue.ToString().ToLowerInvariant()}-split captions, {classes.Entries.Count} designs), trained on {train.Count} renders at {string.Join("/", sizeList)} px, {o.Epochs} epochs, batch {o.BatchSize}, input {o.InputSize} px, {lossNote}."));
            sb.AppendLine();
            sb.AppendLine("| test images | size | images | top-1 | top-5 |");
            sb.AppendLine("|---|---|---|---|---|");
            foreach (var size in sizeList)
            {
                var clean = classes.LoadRenders(dataDir, splitValue, [size]);
                var acc = FeatureNetTrainer.Evaluate(trained, clean);
                sb.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| training renders, unperturbed (not held out) | {size} | {acc.Count} | {acc.Top1:P1} | {acc.Top5:P1} |"));
            }
            foreach (var size in sizeList)
            {
                var held = DesignClasses.HeldOut(sources, size, HeldOutPerturbation, HeldOutSeed + size);
                var acc = FeatureNetTrainer.Evaluate(trained, held);
                sb.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| held out: {p.GetValue(heldOutSource)} px renders resized and perturbed | {size} | {acc.Count} | {acc.Top1:P1} | {acc.Top5:P1} |"));
                if (size == 32 && p.GetValue(export) is string exportPath) Export(exportPath, held, p.GetValue(exportCount));
            }
            console.Out.Write(sb.ToString());
            if (p.GetValue(report) is string r) File.WriteAllText(r, sb.ToString());
            return 0;
        }));
        return cmd;
    }

    /// <summary>An evenly spaced subset as safetensors: <c>images</c> uint8 (N, H, W, 3), <c>labels</c> int64 (N).</summary>
    private static void Export(string path, IReadOnlyList<(RgbImage Image, int Label)> held, int count)
    {
        var picked = Enumerable.Range(0, Math.Min(count, held.Count)).Select(i => held[(int)((long)i * held.Count / Math.Min(count, held.Count))]).ToList();
        int h = picked[0].Image.Height, w = picked[0].Image.Width;
        using var images = tensor(picked.SelectMany(x => x.Image.Pixels).ToArray(), [picked.Count, h, w, 3]);
        using var labels = tensor(picked.Select(x => (long)x.Label).ToArray());
        SafeTensorsWriter.Save(path, new Dictionary<string, Tensor> { ["images"] = images, ["labels"] = labels },
            new Dictionary<string, string> { ["what"] = "held-out 256 px renders resized to 32 px and perturbed; labels index the feature net's class names" });
    }

    private sealed class Progress(Action<FeatureNetEpoch> report) : IProgress<FeatureNetEpoch>
    {
        public void Report(FeatureNetEpoch value) => report(value);
    }

    private sealed class TrainedNet(FeatureNetTrainingResult value) : IDisposable
    {
        public FeatureNetTrainingResult Value { get; } = value;
        public void Dispose() => Value.Net.Dispose();
    }
}
