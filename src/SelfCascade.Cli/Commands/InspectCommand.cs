using System.CommandLine;
using System.Text.Json;
using SelfCascade.Inspection;
using SelfCascade.IO;

namespace SelfCascade.Cli.Commands;

/// <summary>`selfcascade inspect --model DIR`: per component class, family, parameters, dtypes, files, validation.</summary>
public static class InspectCommand
{
    public static Command Create(CliConsole console)
    {
        var model = new Option<string?>("--model") { Description = "A diffusers folder (model_index.json), one component folder (config.json), a single-file checkpoint (.safetensors/.ckpt) or a hub id" };
        var singleFile = new SingleFileCliOptions();
        var json = new Option<bool>("--json") { Description = "Print the report as JSON" };
        var lora = new Option<string?>("--lora") { Description = "A LoRA file: report its layout, layers and (with --model) which keys match the model" };
        var cmd = new Command("inspect", "Describe a Stable Diffusion folder or single-file checkpoint and validate every weight against its config") { model, json, lora };
        singleFile.AddTo(cmd);
        cmd.SetAction(p => console.Guard(p.GetValue(CliApp.LibTorchOption), () =>
        {
            if (p.GetValue(lora) is string loraPath)
                return LoraInspectOutput.Run(console, loraPath, p.GetValue(model) is null ? null : ModelOption.Resolve(p.GetValue(model), console), p.GetValue(json));
            if (p.GetValue(model) is null) throw new ArgumentException("inspect needs --model (and/or --lora)");
            var path = ModelOption.Resolve(p.GetValue(model), console);
            var report = File.Exists(path) ? SingleFileInspector.Inspect(path, singleFile.Read(p)) : ModelInspector.Inspect(path);
            if (p.GetValue(json)) console.Out.WriteLine(JsonSerializer.Serialize(ToJson(report), CliConsole.Json));
            else Print(console.Out, report);
            if (!report.Ok) console.Error.WriteLine($"error: {report.ProblemCount} problem(s) found in {report.Root}");
            return report.Ok ? 0 : 1;
        }));
        return cmd;
    }

    private static void Print(TextWriter w, ModelReport r)
    {
        w.WriteLine($"{r.Root}");
        if (r.PipelineClass != null) w.WriteLine($"  pipeline: {r.PipelineClass}");
        w.WriteLine($"  family: {DiffusersModelFolder.FamilyName(r.Family)} ({(r.Details.Count > 0 ? "from the keys and shapes" : "from the configs")})");
        foreach (var d in r.Details) w.WriteLine($"  {d}");
        foreach (var c in r.Components)
        {
            w.WriteLine();
            w.WriteLine($"{c.Name}: {c.ClassName}{(c.Library is null ? "" : $" ({c.Library})")}");
            foreach (var d in c.Details) w.WriteLine($"  {d}");
            if (c.ParameterCount is long n) w.WriteLine($"  parameters: {n:N0}");
            foreach (var (file, bytes) in c.Files) w.WriteLine($"  file: {file} ({FormatBytes(bytes)})");
            if (c.DTypes.Count > 0) w.WriteLine($"  dtypes: {string.Join(", ", c.DTypes.Select(kv => $"{kv.Key} x{kv.Value}"))}");
            if (c.Ok) w.WriteLine(c.ParameterCount is null ? "  ok" : "  weights: ok (every key present with the right shape)");
            else
            {
                w.WriteLine($"  PROBLEMS ({c.Problems.Count}):");
                foreach (var pr in c.Problems) w.WriteLine($"    {pr}");
            }
        }
    }

    private static object ToJson(ModelReport r) => new
    {
        root = r.Root,
        pipeline = r.PipelineClass,
        family = DiffusersModelFolder.FamilyName(r.Family),
        prediction_type = r.PredictionType,
        details = r.Details,
        ok = r.Ok,
        components = r.Components.Select(c => new
        {
            name = c.Name, @class = c.ClassName, library = c.Library, parameters = c.ParameterCount,
            dtypes = c.DTypes, files = c.Files.Select(f => new { file = f.File, bytes = f.Bytes }),
            details = c.Details, problems = c.Problems, ok = c.Ok,
        }),
    };

    public static string FormatBytes(long b) => b switch
    {
        >= 1L << 30 => $"{b / (double)(1L << 30):F2} GiB",
        >= 1L << 20 => $"{b / (double)(1L << 20):F1} MiB",
        >= 1L << 10 => $"{b / 1024.0:F1} KiB",
        _ => $"{b} B",
    };
}
