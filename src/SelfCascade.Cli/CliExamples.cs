using System.CommandLine;
using System.Text.RegularExpressions;

namespace SelfCascade.Cli;

/// <summary>
/// The example lines every command's `--help` ends with (a test checks each command has some). Keyed by the command's
/// path below the root ("" = the root itself); each line is a complete command a user can paste.
/// </summary>
public static partial class CliExamples
{
    public const string CommandName = "selfcascade";

    public static readonly IReadOnlyDictionary<string, string[]> ByCommand = new Dictionary<string, string[]>
    {
        [""] = ["selfcascade generate --prompt \"red heart\" --size 128x128 --out heart.png"],
        ["inspect"] = ["selfcascade inspect --model v2-1_512-ema-pruned.safetensors", "selfcascade inspect --lora style.safetensors --model /models/sd15"],
        ["generate"] =
        [
            "selfcascade generate --prompt \"red heart\" --size 128x128 --out heart.png",
            "selfcascade generate --model /models/sd21-base --prompt \"a corgi in Times Square\" --size 2048x2048 --out corgi-2k.png",
        ],
        ["plan"] = ["selfcascade plan --model /models/sdxl --size 3072x1536"],
        ["upscale"] = ["selfcascade upscale --image heart.png --scale 2 --prompt \"red heart\" --out heart-2x.png"],
        ["compare"] = ["selfcascade compare --prompt \"rocket\" --size 128x128 --methods base,direct,upscale-only,self-cascade --out grid.png"],
        ["prompt-grid"] =
        [
            "selfcascade prompt-grid --prompts-file card-prompts.txt --seeds 0,1 --size 128 --feature-net feature-net.safetensors --out grid.png --report grid.md",
            "selfcascade prompt-grid --prompt \"red heart\" --prompt \"rocket\" --size 64 --upsamplers models/emoji-base-upsamplers/lite-64 --out grid.png",
            "selfcascade prompt-grid --prompt \"red heart\" --prompt \"rocket\" --size 32 --sensitivity --out grid.png --report grid.md",
        ],
        ["bench-quality"] =
        [
            "selfcascade bench-quality --data data --prompts 64 --scales 2,4 --out quality.md --grid grid.png",
            "selfcascade bench-quality --data data --split train --prompts 64 --feature-net train-net.safetensors --out quality-train.md",
        ],
        ["bench-video"] = ["selfcascade bench-video --renders data/render/128/test --clips 12 --scales 2,4 --out video-quality.md"],
        ["data"] = ["selfcascade data --out data --sizes 32,64,128"],
        ["convert"] = ["selfcascade convert --model v2-1_512-ema-pruned.safetensors --out /models/sd21-base"],
        ["convert-upsamplers"] = ["selfcascade convert-upsamplers --in upsampler_only.pth --model /models/sdxl --out sdxl-upsamplers"],
        ["train-base"] = ["selfcascade train-base --data data/render/32 --preset emoji --out runs/base --steps 20000"],
        ["train-upsamplers"] =
        [
            "selfcascade train-upsamplers --model runs/base/model --data data/render/64 --out runs/up64 --steps 2000",
            "selfcascade train-upsamplers --model runs/base/model --data data/render/64/train --exclude-captions quality-train.prompts.txt --out runs/up64 --steps 2000",
            "selfcascade generate --prompt \"red heart\" --size 64x64 --upsamplers runs/up64 --out heart.png",
        ],
        ["doctor"] = ["selfcascade doctor", "selfcascade doctor --json --throughput-seconds 0"],
        ["bench-gpu"] = ["selfcascade bench-gpu --device cuda --repeats 5"],
        ["generate-video"] =
        [
            "selfcascade generate-video --prompt \"red heart, zooming in\" --size 128x128 --frames 8 --out heart.mp4",
            "selfcascade generate-video --model models/text-to-video-ms-1.7b --prompt \"a panda surfing\" --size 512x512 --frames 16 --out panda.mp4",
            "selfcascade generate-video --prompt \"red heart, zooming in\" --size 64x64 --upsamplers models/emoji-base-upsamplers/lite-64 --out heart.webp",
        ],
        ["motion-data"] = ["selfcascade motion-data --renders data/render/128/train --out motion-clips --clips 20"],
        ["train-motion"] = ["selfcascade train-motion --data data/render/128/train --out runs/motion --steps 2000 --batch 4"],
        ["serve"] = ["selfcascade serve", "selfcascade serve --model sd21=/models/sd21-base --port 7860 --data ~/.selfcascade", "selfcascade serve --model sd21=/models/sd21-base --upsamplers tuned=runs/up-2x,runs/up-4x --lora style=loras/style.safetensors"],
        ["train-feature-net"] =
        [
            "selfcascade train-feature-net --data data --out runs/featurenet --epochs 40",
            "selfcascade train-feature-net --data data --split train --out train-net.safetensors --epochs 40",
        ],
    };

    /// <summary>The help section for <paramref name="command"/> (empty when it has no examples).</summary>
    public static string Section(Command command)
    {
        var path = new List<string>();
        for (var c = command; c is not null and not RootCommand; c = c.Parents.OfType<Command>().FirstOrDefault())
            path.Insert(0, c.Name);
        if (!ByCommand.TryGetValue(string.Join(' ', path), out var lines) || lines.Length == 0) return "";
        return (lines.Length == 1 ? "Example:" : "Examples:") + Environment.NewLine
            + string.Concat(lines.Select(l => "  " + l + Environment.NewLine)) + Environment.NewLine;
    }

    /// <summary>Help text with the program's file name (SelfCascade.Cli, testhost, ...) shown as the command users type.</summary>
    public static string WithCommandName(string help)
    {
        var exe = RootCommand.ExecutableName;
        return string.IsNullOrEmpty(exe) || exe == CommandName ? help
            : Regex.Replace(help, @"(?<![\w.])" + Regex.Escape(exe) + @"(?![\w.])", CommandName);
    }
}
