using System.CommandLine;
using SelfCascade.Checkpoints;
using SelfCascade.Checkpoints.Conversion;
using SelfCascade.Checkpoints.SingleFile;
using SelfCascade.Runtime;
using static TorchSharp.torch;

namespace SelfCascade.Cli.Commands;

/// <summary>
/// `selfcascade convert --model X --out DIR`: a single-file checkpoint as a diffusers folder; with
/// `--to single-file` a folder (or single file) as one file in the original layout (ComfyUI / A1111).
/// </summary>
public static class ConvertCommand
{
    public static Command Create(CliConsole console)
    {
        var model = new Option<string>("--model") { Description = "A single-file checkpoint (.safetensors) or a diffusers folder", Required = true };
        var output = new Option<string>("--out") { Description = "The diffusers folder to write (--to diffusers) or the .safetensors file (--to single-file)", Required = true };
        var to = new Option<string>("--to") { Description = "diffusers (a folder, default) or single-file (the original layout)", DefaultValueFactory = _ => "diffusers" };
        to.AcceptOnlyFromAmong("diffusers", "single-file");
        var dtype = new Option<string?>("--dtype") { Description = "fp32, fp16 or bf16 (default: keep the input's)" };
        dtype.AcceptOnlyFromAmong("fp32", "fp16", "bf16");
        var singleFile = new SingleFileCliOptions();
        var cmd = new Command("convert", "Convert between a single-file checkpoint and a diffusers folder") { model, output, to, dtype };
        singleFile.AddTo(cmd);
        cmd.SetAction(p => console.Guard(p.GetValue(CliApp.LibTorchOption), () =>
        {
            var source = ModelSource.Resolve(p.GetValue(model)!);
            var outPath = p.GetValue(output)!;
            ScalarType? type = p.GetValue(dtype) is string d ? TorchRuntime.ParseDType(d) : null;
            if (p.GetValue(to) == "single-file")
            {
                if (!outPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
                    throw new ArgumentException($"--out '{outPath}' must end in .safetensors");
                if (File.Exists(outPath)) throw new IOException($"{outPath} exists; not overwriting it");
                using var components = source.Open(singleFile.Read(p));
                CheckpointConverter.ToSingleFile(components, outPath, type);
            }
            else
            {
                if (source.Kind != ModelSourceKind.SingleFile) throw new ArgumentException($"{source.Path} is already a diffusers folder (use --to single-file)");
                if (Directory.Exists(outPath) && Directory.EnumerateFileSystemEntries(outPath).Any()) throw new IOException($"{outPath} is not empty; not writing into it");
                using var ck = SingleFileCheckpoint.Open(source.Path, singleFile.Read(p));
                CheckpointConverter.ToDiffusersFolder(ck, outPath, type);
            }
            console.Out.WriteLine(Path.GetFullPath(outPath));
            return 0;
        }));
        return cmd;
    }
}
