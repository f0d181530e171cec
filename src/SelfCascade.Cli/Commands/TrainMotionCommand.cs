using System.CommandLine;
using SelfCascade.Video.Training;

namespace SelfCascade.Cli.Commands;

/// <summary>
/// `selfcascade train-motion`: trains a motion adapter (AnimateDiff, frozen image UNet) for a pixel-space model on
/// synthetic motion clips made from emoji renders on the fly; saved to OUT/motion_adapter (a diffusers MotionAdapter folder).
/// </summary>
public static class TrainMotionCommand
{
    public static Command Create(CliConsole console)
    {
        var model = new Option<string?>("--model") { Description = "The frozen image model (default: the embedded emoji model)" };
        var data = new Option<string>("--data") { Description = "Emoji render folder, e.g. data/render/128/train (.png with .txt captions)", Required = true };
        var frames = new Option<int>("--frames") { Description = "Frames per training clip", DefaultValueFactory = _ => 8 };
        var heads = new Option<int>("--heads") { Description = "Attention heads per motion module", DefaultValueFactory = _ => 4 };
        var maxSeq = new Option<int>("--max-seq-length") { Description = "Frame positions of the adapter (most frames it can generate)", DefaultValueFactory = _ => 32 };
        var mid = new Option<bool>("--mid-block") { Description = "Also a motion module in the mid block" };
        var common = new TrainingCliOptions(defaultLr: 1e-4, defaultCaptionDropout: 0.1);
        var cmd = new Command("train-motion", "Train a motion adapter (AnimateDiff-style, image model frozen) on synthetic emoji motion clips; saved to OUT/motion_adapter")
        {
            model, data, frames, heads, maxSeq, mid,
        };
        common.AddTo(cmd);
        cmd.SetAction(p => console.Guard(p.GetValue(CliApp.LibTorchOption), () =>
        {
            var options = common.Read(p);
            var motion = new MotionAdapterTrainingOptions
            {
                ModelDir = ModelOption.Resolve(p.GetValue(model), console), Frames = p.GetValue(frames), Heads = p.GetValue(heads),
                MaxSeqLength = p.GetValue(maxSeq), MidBlock = p.GetValue(mid), Device = p.GetValue(common.Device)!,
            };
            var result = MotionAdapterTraining.Run(p.GetValue(data)!, options, motion, TrainingCliOptions.Bar(console), console.Cancellation,
                line => console.Error.WriteLine(line));
            console.Out.WriteLine(TrainingCliOptions.Summary(result));
            console.Out.WriteLine(Path.GetFullPath(Path.Combine(options.OutputDir, MotionAdapterTask.AdapterFolder)));
            return 0;
        }));
        return cmd;
    }
}
