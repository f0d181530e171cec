using System.CommandLine;
using SelfCascade.Runtime;
using SelfCascade.Training;

namespace SelfCascade.Cli.Commands;

/// <summary>
/// `selfcascade train-base`: train a small text-conditioned pixel-space base model from scratch (UNet + CLIP text
/// encoder, EMA, previews) and export a diffusers folder to OUT/model.
/// </summary>
public static class TrainBaseCommand
{
    public static Command Create(CliConsole console)
    {
        var data = new Option<string>("--data") { Description = "Image folder (recursive; same-name .txt captions)", Required = true };
        var preset = new Option<string>("--preset") { Description = $"Model shape: {string.Join(", ", BaseModelPreset.Names)}, or a JSON file with 'unet' and 'text_encoder' configs", DefaultValueFactory = _ => "tiny" };
        var size = new Option<int>("--size") { Description = "Training image size in pixels (random crops of larger images)", DefaultValueFactory = _ => 32 };
        var ema = new Option<double>("--ema") { Description = "EMA decay of the weights (0 = off)", DefaultValueFactory = _ => 0.999 };
        var previewEvery = new Option<int>("--preview-every") { Description = "Preview grid every N steps (0 = only at the end)", DefaultValueFactory = _ => 500 };
        var previewPrompts = new Option<string[]>("--preview-prompt") { Description = "A preview prompt (repeatable; default: the first four captions)" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "CLIP tokenizer folder (vocab.json + merges.txt); default: SELFCASCADE_TOKENIZER or shared/fixtures/diffusers-parity/tokenizer/pad_eos" };
        var schedule = new Option<string>("--beta-schedule") { Description = "linear (pixel-space DDPM) or scaled_linear (SD)", DefaultValueFactory = _ => "linear" };
        schedule.AcceptOnlyFromAmong("linear", "scaled_linear");
        var prediction = new Option<string>("--prediction") { Description = "epsilon or v_prediction", DefaultValueFactory = _ => "epsilon" };
        prediction.AcceptOnlyFromAmong("epsilon", "v_prediction");
        var dtype = new Option<string>("--export-dtype") { Description = "Weight dtype of the exported folder", DefaultValueFactory = _ => "fp16" };
        dtype.AcceptOnlyFromAmong("fp32", "fp16", "bf16");
        var initFrom = new Option<string?>("--init-from") { Description = "Fine-tune an exported model folder of the same preset (e.g. at a higher --size) instead of training from scratch" };
        var freezeText = new Option<bool>("--freeze-text-encoder") { Description = "Train the UNet only (the text encoder stays as loaded)" };
        var exclude = new Option<string?>("--exclude-captions") { Description = "File of captions (one per line) whose images are not trained on, e.g. the OUT.prompts.txt of bench-quality --split train (for fine-tune baselines at a higher size)" };
        var snrGamma = new Option<double>("--snr-gamma") { Description = "Min-SNR-γ loss weighting (diffusers' --snr_gamma; 5 in Hang et al. 2023); 0 = plain MSE", DefaultValueFactory = _ => 0 };
        var common = new TrainingCliOptions(defaultLr: 1e-3, defaultCaptionDropout: 0.1);
        var cmd = new Command("train-base", "Train a small text-to-image base model in pixel space and export a diffusers folder (OUT/model)")
        {
            data, preset, size, ema, previewEvery, previewPrompts, tokenizer, schedule, prediction, dtype, initFrom, freezeText, exclude, snrGamma,
        };
        common.AddTo(cmd);
        cmd.SetAction(p => console.Guard(p.GetValue(CliApp.LibTorchOption), () =>
        {
            var options = common.Read(p);
            var model = new BaseModelOptions
            {
                Preset = p.GetValue(preset)!, Size = p.GetValue(size), EmaDecay = p.GetValue(ema), PreviewEvery = p.GetValue(previewEvery),
                PreviewPrompts = p.GetValue(previewPrompts) is { Length: > 0 } prompts ? prompts : null,
                TokenizerDir = ResolveTokenizer(p.GetValue(tokenizer)), BetaSchedule = p.GetValue(schedule)!,
                PredictionType = p.GetValue(prediction)!, ExportDType = TorchRuntime.ParseDType(p.GetValue(dtype)),
                Device = p.GetValue(common.Device)!, InitFrom = p.GetValue(initFrom), TrainTextEncoder = !p.GetValue(freezeText),
                SnrGamma = p.GetValue(snrGamma),
                ExcludeCaptions = p.GetValue(exclude) is string list ? ImageFolderDataset.ReadCaptionList(list) : null,
            };
            var result = BaseModelTraining.Run(p.GetValue(data)!, options, model, TrainingCliOptions.Bar(console),
                console.Cancellation, line => console.Error.WriteLine(line));
            console.Out.WriteLine(TrainingCliOptions.Summary(result));
            console.Out.WriteLine(Path.GetFullPath(Path.Combine(options.OutputDir, BaseModelTraining.ModelFolder)));
            return 0;
        }));
        return cmd;
    }

    /// <summary>--tokenizer, else SELFCASCADE_TOKENIZER, else the shared fixture tokenizer above the program.</summary>
    public static string ResolveTokenizer(string? given)
    {
        if (!string.IsNullOrWhiteSpace(given)) return given;
        var env = Environment.GetEnvironmentVariable("SELFCASCADE_TOKENIZER");
        if (!string.IsNullOrWhiteSpace(env)) return env;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "fixtures", "diffusers-parity", "tokenizer", "pad_eos");
            if (File.Exists(Path.Combine(candidate, "vocab.json"))) return candidate;
        }
        throw new ArgumentException("no CLIP tokenizer folder: pass --tokenizer DIR (e.g. an SD model's tokenizer/ folder) or set SELFCASCADE_TOKENIZER");
    }
}
