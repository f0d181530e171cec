using System.CommandLine;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SelfCascade.Pipelines;
using SelfCascade.Runtime;
using SelfCascade.Server;
using SelfCascade.Server.Extras;
using SelfCascade.Server.Jobs;
using SelfCascade.Server.Models;

namespace SelfCascade.Cli.Commands;

/// <summary>`selfcascade serve`: the web server (native API, and the groups registered in SelfCascade.Server).</summary>
public static class ServeCommand
{
    public static Command Create(CliConsole console)
    {
        var model = new Option<string[]>("--model")
        {
            Description = $"A model to serve: PATH, hub id, or NAME=PATH (repeatable; the first is the default; default: the embedded '{ModelOption.EmbeddedName}' model)",
            AllowMultipleArgumentsPerToken = false,
        };
        var port = new Option<int>("--port") { Description = "TCP port (0 = any free port)", DefaultValueFactory = _ => 7860 };
        var host = new Option<string>("--host") { Description = "Address to bind; anything but loopback requires --api-key", DefaultValueFactory = _ => "127.0.0.1" };
        var apiKey = new Option<string?>("--api-key") { Description = "Key every request must carry (Authorization: Bearer KEY); default $SELFCASCADE_API_KEY" };
        var data = new Option<string>("--data") { Description = "Folder for the job database and outputs", DefaultValueFactory = _ => "selfcascade-data" };
        var maxQueue = new Option<int>("--max-queue") { Description = "Jobs allowed to wait; more get HTTP 429", DefaultValueFactory = _ => 16 };
        var device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N", DefaultValueFactory = _ => "cpu" };
        var dtype = new Option<string?>("--dtype") { Description = "fp32, fp16 or bf16 (default: fp16 on CUDA, fp32 on CPU)" };
        dtype.AcceptOnlyFromAmong("fp32", "fp16", "bf16");
        var memory = new Option<double?>("--model-memory") { Description = "GiB of model weights kept resident (least recently used unloaded beyond; default half the available memory)" };
        var maxPixels = new Option<long?>("--max-pixels") { Description = "Largest output (width x height) a request may ask for (default 4096x4096)" };
        var grace = new Option<double>("--shutdown-grace") { Description = "Seconds a running job may take to finish on SIGTERM before it is cancelled", DefaultValueFactory = _ => 5 };
        var upsamplers = new Option<string[]>("--upsamplers")
        {
            Description = "A feature-upsampler set requests may name: NAME=PATH[,PATH...], one checkpoint folder (or train-upsamplers --out folder) per upscaling stage, as generate --upsamplers (repeatable)",
            AllowMultipleArgumentsPerToken = false,
        };
        var lora = new Option<string[]>("--lora")
        {
            Description = "A LoRA file requests may name: NAME=FILE (repeatable); requests give names and scales, never paths",
            AllowMultipleArgumentsPerToken = false,
        };
        var cmd = new Command("serve", "Serve the models over HTTP: native JSON API with Server-Sent Events (docs/SERVER.md)")
        {
            model, port, host, apiKey, data, maxQueue, device, dtype, memory, maxPixels, grace, upsamplers, lora,
        };
        cmd.SetAction(p => console.Guard(p.GetValue(CliApp.LibTorchOption), () =>
        {
            var specs = new List<ModelSpec>();
            foreach (var m in p.GetValue(model) ?? [])
            {
                int eq = m.IndexOf('=');
                string name, value;
                if (eq > 0) (name, value) = (m[..eq], m[(eq + 1)..]);
                else (name, value) = (DefaultName(m), m);
                specs.Add(new ModelSpec(name, ModelOption.Resolve(value, console)));
            }
            if (specs.Count == 0) specs.Add(new ModelSpec(ModelOption.EmbeddedName, ModelOption.Resolve(null)));
            var key = p.GetValue(apiKey) ?? Environment.GetEnvironmentVariable("SELFCASCADE_API_KEY");
            var options = new ServerOptions
            {
                Models = specs, Host = p.GetValue(host)!, Port = p.GetValue(port), ApiKey = string.IsNullOrEmpty(key) ? null : key,
                DataDir = Path.GetFullPath(p.GetValue(data)!), MaxQueue = p.GetValue(maxQueue),
                Pipeline = new PipelineOptions { Device = p.GetValue(device)!, DType = p.GetValue(dtype) is string dt ? TorchRuntime.ParseDType(dt) : null },
                ModelMemoryBudgetBytes = p.GetValue(memory) is double gib ? (long)(gib * (1L << 30)) : null,
                Limits = p.GetValue(maxPixels) is long mp ? new JobLimits { MaxPixels = mp } : new JobLimits(),
                ShutdownGrace = TimeSpan.FromSeconds(Math.Max(0, p.GetValue(grace))),
                Upsamplers = ParseUpsamplers(p.GetValue(upsamplers) ?? []),
                Loras = ParseLoras(p.GetValue(lora) ?? []),
            };
            TorchRuntime.ResolveDevice(options.Pipeline.Device);
            using var app = ServerApp.Build(options, configureLogging: l => l.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning));
            app.StartAsync(console.Cancellation).GetAwaiter().GetResult();
            var report = app.Services.GetService(typeof(StartupReport)) as StartupReport;
            foreach (var url in ServerApp.Addresses(app)) console.Out.WriteLine($"listening on {url}");
            console.Out.WriteLine($"models: {string.Join(", ", specs.Select(s => s.Name))}; data: {options.DataDir}" +
                (report is { InterruptedJobs: > 0 } ? $"; {report.InterruptedJobs} interrupted job(s) from the last run marked" : ""));
            console.Out.Flush();
            app.WaitForShutdownAsync(console.Cancellation).GetAwaiter().GetResult();
            return 0;
        }));
        return cmd;
    }

    /// <summary>--upsamplers NAME=PATH[,PATH...]: the paths made absolute (validated when the server starts).</summary>
    public static List<UpsamplerSpec> ParseUpsamplers(IEnumerable<string> values) => values.Select(v =>
    {
        var (name, paths) = ServedExtras.SplitNameValue(v, "--upsamplers");
        var dirs = paths.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(Path.GetFullPath).ToList();
        return new UpsamplerSpec(name, dirs);
    }).ToList();

    /// <summary>--lora NAME=FILE.</summary>
    public static List<LoraSpec> ParseLoras(IEnumerable<string> values) => values.Select(v =>
    {
        var (name, file) = ServedExtras.SplitNameValue(v, "--lora");
        return new LoraSpec(name, Path.GetFullPath(file));
    }).ToList();

    /// <summary>A model's name from its path or hub id: the folder or file name without extension.</summary>
    public static string DefaultName(string value)
    {
        var trimmed = value.TrimEnd('/', '\\');
        var at = trimmed.IndexOf('@');
        if (at > 0 && !File.Exists(trimmed) && !Directory.Exists(trimmed)) trimmed = trimmed[..at];
        return Path.GetFileNameWithoutExtension(trimmed);
    }
}
