using System.CommandLine;
using SelfCascade.Cascade.Upsamplers;
using SelfCascade.Runtime;
using SelfCascade.Training;

namespace SelfCascade.Cli.Commands;

/// <summary>
/// `selfcascade train-upsamplers`: the paper's Algorithm 1: train a time-aware feature upsampler set for one
/// adaptation (stage scale) of a frozen model on HR crops; the set is saved to OUT/upsamplers.
/// </summary>
public static class TrainUpsamplersCommand
{
    public static Command Create(CliConsole console)
    {
        var model = new Option<string>("--model") { Description = "The frozen base model (diffusers folder; a TextToVideoSD folder trains on its UNet3D's spatial half)", Required = true };
        var data = new Option<string>("--data") { Description = "Folder of HR images and/or video clips (recursive; same-name .txt captions; clips: frame folders with caption.txt, animated .gif/.webp, .mp4 through ffmpeg; every frame is an image)", Required = true };
        var variant = new Option<string>("--variant") { Description = "full (released ResBlocks) or lite (small)", DefaultValueFactory = _ => "lite" };
        variant.AcceptOnlyFromAmong("full", "lite");
        var stageScale = new Option<double>("--stage-scale") { Description = "Side ratio HR / LR of the adaptation", DefaultValueFactory = _ => 2.0 };
        var maxTimestep = new Option<int>("--max-timestep") { Description = "K: timesteps drawn from U{1..K}", DefaultValueFactory = _ => 700 };
        var size = new Option<int>("--size") { Description = "HR crop size in pixels (default: native size × stage scale)", DefaultValueFactory = _ => 0 };
        var points = new Option<string?>("--points") { Description = "Injection points, e.g. down0,down1,mid (default: the released ones)" };
        var dtype = new Option<string>("--dtype") { Description = "Weights of the frozen networks (upsamplers train in fp32)", DefaultValueFactory = _ => "fp32" };
        dtype.AcceptOnlyFromAmong("fp32", "fp16", "bf16");
        var exclude = new Option<string?>("--exclude-captions") { Description = "File of captions (one per line) whose images are not trained on, e.g. the OUT.prompts.txt of bench-quality --split train" };
        var common = new TrainingCliOptions(defaultLr: 5e-5, defaultCaptionDropout: 0.1);
        var cmd = new Command("train-upsamplers", "Train time-aware feature upsamplers for a frozen model (paper Algorithm 1); saved to OUT/upsamplers")
        {
            model, data, variant, stageScale, maxTimestep, size, points, dtype, exclude,
        };
        common.AddTo(cmd);
        cmd.SetAction(p => console.Guard(p.GetValue(CliApp.LibTorchOption), () =>
        {
            var options = common.Read(p);
            var up = new UpsamplerTrainingOptions
            {
                ModelDir = ModelOption.Resolve(p.GetValue(model), console), Variant = UpsamplerVariants.Parse(p.GetValue(variant)!), StageScale = p.GetValue(stageScale),
                MaxTimestep = p.GetValue(maxTimestep), Size = p.GetValue(size),
                Points = p.GetValue(points) is string s ? s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(InjectionPoint.Parse).ToList() : null,
                FrozenDType = TorchRuntime.ParseDType(p.GetValue(dtype)), Device = p.GetValue(common.Device)!,
                ExcludeCaptions = p.GetValue(exclude) is string list ? ImageFolderDataset.ReadCaptionList(list) : null,
            };
            var result = UpsamplerTraining.Run(p.GetValue(data)!, options, up, TrainingCliOptions.Bar(console), console.Cancellation,
                line => console.Error.WriteLine(line), [Video.FfmpegClipReader.Create()]);
            console.Out.WriteLine(TrainingCliOptions.Summary(result));
            console.Out.WriteLine(Path.GetFullPath(Path.Combine(options.OutputDir, UpsamplerTrainingTask.UpsamplerFolder)));
            return 0;
        }));
        return cmd;
    }
}
