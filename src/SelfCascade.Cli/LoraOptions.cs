using System.CommandLine;
using System.Globalization;
using SelfCascade.Checkpoints.Lora;
using SelfCascade.Pipelines;

namespace SelfCascade.Cli;

/// <summary>`--lora FILE[:SCALE]` (repeatable) and `--lora-lenient`, shared by generate, compare and upscale.</summary>
public sealed class LoraOptions
{
    public readonly Option<string[]> Lora = new("--lora")
    {
        Description = "A LoRA file (kohya/A1111 or diffusers/PEFT; .safetensors, or .pt/.ckpt read safely) merged into the weights, optional :SCALE (default 1); repeatable",
        Arity = ArgumentArity.ZeroOrMore,
        AllowMultipleArgumentsPerToken = false,
    };
    public readonly Option<bool> Lenient = new("--lora-lenient") { Description = "Skip LoRA keys that match no module instead of failing" };

    public void AddTo(Command cmd)
    {
        cmd.Add(Lora);
        cmd.Add(Lenient);
    }

    /// <summary>FILE or FILE:SCALE (the part after the last ':' is a scale only when it parses as a number).</summary>
    public static (string Path, double Scale) Parse(string spec)
    {
        int colon = spec.LastIndexOf(':');
        if (colon > 0 && double.TryParse(spec[(colon + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var s))
        {
            if (!double.IsFinite(s)) throw new ArgumentException($"--lora '{spec}': scale is not finite");
            return (spec[..colon], s);
        }
        return (spec, 1.0);
    }

    /// <summary>Loads and merges every --lora into the pipeline (<see cref="LoraStack"/>); disposing the result restores the weights.</summary>
    public IDisposable Apply(ParseResult p, StableDiffusionPipeline pipe, TextWriter? log = null)
    {
        var specs = p.GetValue(Lora) ?? [];
        return LoraStack.Apply(pipe, specs.Select(spec => { var (path, scale) = Parse(spec); return new LoraFileUse(path, scale); }).ToList(),
            p.GetValue(Lenient), (use, app) =>
                log?.WriteLine($"lora: {Path.GetFileName(use.Path)} x{use.UnetScale.ToString(CultureInfo.InvariantCulture)}: {app.Report.Matched.Count} of {app.Report.LayerCount} layers merged" +
                    (app.Report.Unmatched.Count > 0 ? $", {app.Report.Unmatched.Count} skipped" : "")));
    }
}
