using System.CommandLine;
using SelfCascade.Data.Motion;

namespace SelfCascade.Cli.Commands;

/// <summary>
/// `selfcascade motion-data`: synthetic clips with known motion from the emoji renders (<see cref="MotionClipDataset"/>),
/// written as a folder of frame folders (frames, caption.txt, motion.json with the ground-truth transforms).
/// </summary>
public static class MotionDataCommand
{
    public static Command Create(CliConsole console)
    {
        var renders = new Option<string>("--renders") { Description = "A render folder of the emoji dataset, e.g. data/render/128/train (renders at 4x the clip size resample best)", Required = true };
        var output = new Option<string>("--out") { Description = "Output folder (clip_00000/frame_00.png, caption.txt, motion.json, ...)", Required = true };
        var clips = new Option<int>("--clips") { Description = "Number of clips", DefaultValueFactory = _ => 100 };
        var frames = new Option<int>("--frames") { Description = "Frames per clip", DefaultValueFactory = _ => MotionClipSynthesizer.DefaultFrames };
        var size = new Option<int>("--size") { Description = "Clip size in pixels (square)", DefaultValueFactory = _ => MotionClipSynthesizer.DefaultSize };
        var seed = new Option<int>("--seed") { Description = "Seed: clip i depends only on (seed, i)", DefaultValueFactory = _ => 0 };
        var cmd = new Command("motion-data", "Synthesise captioned clips with known motion (move, zoom, rotate, bounce, colour shift) from emoji renders")
        {
            renders, output, clips, frames, size, seed,
        };
        cmd.SetAction(p => console.Guard(p.GetValue(CliApp.LibTorchOption), () =>
        {
            int n = p.GetValue(clips);
            if (n < 1) throw new ArgumentException($"--clips must be at least 1 (got {n})");
            var ds = new MotionClipDataset(p.GetValue(renders)!, p.GetValue(seed), p.GetValue(frames), p.GetValue(size));
            var progress = console.Progress<int>(i => (i / (double)n, $"clip {i}/{n}"));
            ds.WriteClips(p.GetValue(output)!, n, progress, console.Cancellation);
            console.Out.WriteLine($"{Path.GetFullPath(p.GetValue(output)!)}: {n} clips of {ds.Frames} frames at {ds.Size} px from {ds.DesignCount} designs");
            return 0;
        }));
        return cmd;
    }
}
