using System.CommandLine;
using SelfCascade.Checkpoints.SingleFile;

namespace SelfCascade.Cli;

/// <summary>`--config DIR` and `--prediction-type`: how a single-file checkpoint given as --model is read.</summary>
public sealed class SingleFileCliOptions
{
    public Option<string?> Config { get; } = new("--config")
    {
        Description = "For a single-file --model: a diffusers folder whose configs (not weights) describe it, for shapes other than SD 1.5/2.1/SDXL",
    };

    public Option<string?> PredictionType { get; } = new("--prediction-type")
    {
        Description = "For a single-file --model: epsilon or v_prediction (default: the config's; SD 2.x is guessed as diffusers does)",
    };

    public SingleFileCliOptions() => PredictionType.AcceptOnlyFromAmong(SingleFileCheckpoint.PredictionTypes);

    public void AddTo(Command cmd)
    {
        cmd.Add(Config);
        cmd.Add(PredictionType);
    }

    public SingleFileOptions Read(ParseResult p) => new() { ConfigDir = p.GetValue(Config), PredictionType = p.GetValue(PredictionType) };
}
