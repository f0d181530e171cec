using System.CommandLine;
using SelfCascade.Training;

namespace SelfCascade.Cli.Commands;

/// <summary>The options both training commands share (the <see cref="Trainer"/> loop's), and the progress bar.</summary>
public sealed class TrainingCliOptions
{
    public Option<string> Out { get; } = new("--out") { Description = "Run folder: checkpoints/, loss.csv, loss.png and the result", Required = true };
    public Option<int> Steps { get; } = new("--steps") { Description = "Optimizer steps in all (a resumed run continues to this count)", DefaultValueFactory = _ => 1000 };
    public Option<int> Batch { get; } = new("--batch") { Description = "Images per micro-batch", DefaultValueFactory = _ => 32 };
    public Option<int> GradAccum { get; } = new("--grad-accum") { Description = "Micro-batches per optimizer step", DefaultValueFactory = _ => 1 };
    public Option<double> Lr { get; }
    public Option<int> Warmup { get; } = new("--warmup") { Description = "Linear learning-rate warm-up steps", DefaultValueFactory = _ => 0 };
    public Option<double> WeightDecay { get; } = new("--weight-decay") { Description = "AdamW weight decay", DefaultValueFactory = _ => 0.01 };
    public Option<double> MaxGradNorm { get; } = new("--max-grad-norm") { Description = "Clip the gradient norm (0 = off)", DefaultValueFactory = _ => 1.0 };
    public Option<double> CaptionDropout { get; }
    public Option<long> Seed { get; } = new("--seed") { Description = "Seed of the data order, crops, caption dropout, noise and timesteps", DefaultValueFactory = _ => 0 };
    public Option<bool> Resume { get; } = new("--resume") { Description = "Continue exactly from the newest checkpoint in --out" };
    public Option<int> CheckpointEvery { get; } = new("--checkpoint-every") { Description = "Checkpoint every N steps (also at the end and on Ctrl+C)", DefaultValueFactory = _ => 500 };
    public Option<int> Keep { get; } = new("--keep-checkpoints") { Description = "Checkpoints kept (the newest)", DefaultValueFactory = _ => 2 };
    public Option<string> Device { get; } = new("--device") { Description = "cpu, cuda or cuda:N", DefaultValueFactory = _ => "cpu" };

    public TrainingCliOptions(double defaultLr, double defaultCaptionDropout)
    {
        Lr = new Option<double>("--lr") { Description = "AdamW learning rate", DefaultValueFactory = _ => defaultLr };
        CaptionDropout = new Option<double>("--caption-dropout") { Description = "Probability of training on the empty caption (for CFG)", DefaultValueFactory = _ => defaultCaptionDropout };
    }

    public void AddTo(Command cmd)
    {
        foreach (var o in new Option[] { Out, Steps, Batch, GradAccum, Lr, Warmup, WeightDecay, MaxGradNorm, CaptionDropout, Seed, Resume, CheckpointEvery, Keep, Device })
            cmd.Add(o);
    }

    public TrainingOptions Read(ParseResult p)
    {
        var options = new TrainingOptions
        {
            OutputDir = p.GetValue(Out)!, Steps = p.GetValue(Steps), BatchSize = p.GetValue(Batch), GradientAccumulation = p.GetValue(GradAccum),
            LearningRate = p.GetValue(Lr), WarmupSteps = p.GetValue(Warmup), WeightDecay = p.GetValue(WeightDecay),
            MaxGradNorm = p.GetValue(MaxGradNorm), CaptionDropout = p.GetValue(CaptionDropout), Seed = p.GetValue(Seed),
            Resume = p.GetValue(Resume), CheckpointEvery = p.GetValue(CheckpointEvery), KeepCheckpoints = p.GetValue(Keep),
        };
        options.ThrowIfInvalid();
        return options;
    }

    public static IProgress<TrainingProgress> Bar(CliConsole console) => console.Progress<TrainingProgress>(t =>
        (t.Fraction, t.Phase == "train" ? $"step {t.Step}/{t.TotalSteps} loss {t.Loss:F4} {t.StepsPerSecond:F2} it/s" : $"{t.Phase} {t.Step}/{t.TotalSteps}"));

    /// <summary>The summary line printed at the end.</summary>
    public static string Summary(TrainingResult r) =>
        $"trained steps {r.StartStep + 1}..{r.FinalStep} in {r.Seconds:F1} s ({r.StepsPerSecond:F2} steps/s); final loss {(r.Losses.Count > 0 ? r.Losses[^1].Loss : double.NaN):F4}";
}
