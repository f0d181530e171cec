using System.CommandLine;
using System.Globalization;
using SelfCascade.Cascade;
using SelfCascade.Cascade.Upsamplers;
using SelfCascade.Models.Unet;
using SelfCascade.Pipelines;
using static TorchSharp.torch;

namespace SelfCascade.Cli;

/// <summary>The cascade's options, shared by `generate`, `upscale` and `plan`.</summary>
public sealed class CascadeOptions
{
    public readonly Option<string?> BaseSize = new("--base-size") { Description = "Base stage WIDTHxHEIGHT (default: about the native area at the target's aspect)" };
    public readonly Option<double?> PivotStrength = new("--pivot-strength") { Description = "img2img strength of each later stage (default: the model's, 0.7 = the paper's K = 700 for SD)" };
    public readonly Option<string?> StageSteps = new("--stage-steps") { Description = "Steps per stage, comma-separated from the base stage (e.g. 50,40,40)" };
    public readonly Option<string?> StageStrength = new("--stage-strength") { Description = "Strength per later stage, comma-separated from stage 1 (e.g. 0.7,0.6)" };
    public readonly Option<string?> StageGuidance = new("--stage-guidance") { Description = "Guidance per stage, comma-separated from the base stage" };
    public readonly Option<string> PivotMode = new("--pivot-mode") { Description = "Latent upsampling of the pivot: bilinear or bicubic", DefaultValueFactory = _ => "bilinear" };
    public readonly Option<string?> SaveStages = new("--save-stages") { Description = "Folder for each earlier stage's image (for inspection)" };
    public readonly Option<string?> Upsamplers = new("--upsamplers") { Description = "Trained feature-upsampler checkpoints, one per upscaling stage, comma-separated (the tuned Self-Cascade); a checkpoint folder or the folder train-upsamplers --out wrote" };
    public readonly Option<double?> UpsamplersPlainBelow = new("--upsamplers-plain-below") { Description = "Run the plain UNet at timesteps at or below this (the released code's 100; default off)" };
    public readonly Option<string> VaeTilingOption = new("--vae-tiling") { Description = "Tiled VAE decode/encode: auto (above 1024x1024 px), on, off", DefaultValueFactory = _ => "auto" };

    public CascadeOptions()
    {
        PivotMode.AcceptOnlyFromAmong("bilinear", "bicubic");
        VaeTilingOption.AcceptOnlyFromAmong("auto", "on", "off");
    }

    public void AddTo(Command cmd)
    {
        foreach (var o in new Option[] { BaseSize, PivotStrength, StageSteps, StageStrength, StageGuidance, PivotMode, SaveStages, VaeTilingOption, Upsamplers, UpsamplersPlainBelow })
            cmd.Add(o);
    }

    public Settings Read(ParseResult p)
    {
        var overrides = new Dictionary<int, StageSettings>();
        void Merge(int stage, StageSettings s)
        {
            var old = overrides.GetValueOrDefault(stage) ?? new StageSettings();
            overrides[stage] = new StageSettings(s.Steps ?? old.Steps, s.Strength ?? old.Strength, s.GuidanceScale ?? old.GuidanceScale);
        }
        var steps = ParseList(p.GetValue(StageSteps), "--stage-steps");
        for (int i = 0; i < steps.Count; i++)
        {
            if (steps[i] < 1 || steps[i] != Math.Floor(steps[i])) throw new ArgumentException($"--stage-steps: '{steps[i]}' is not a positive whole number");
            Merge(i, new StageSettings(Steps: (int)steps[i]));
        }
        var strengths = ParseList(p.GetValue(StageStrength), "--stage-strength");
        for (int i = 0; i < strengths.Count; i++) Merge(i + 1, new StageSettings(Strength: strengths[i]));
        var guidances = ParseList(p.GetValue(StageGuidance), "--stage-guidance");
        for (int i = 0; i < guidances.Count; i++) Merge(i, new StageSettings(GuidanceScale: guidances[i]));
        PixelSize? baseSize = p.GetValue(BaseSize) is string b ? ToPixelSize(CliParsing.ParseSize(b)) : null;
        double? strength = p.GetValue(PivotStrength);
        if (strength is double s0 && !(s0 > 0 && s0 <= 1)) throw new ArgumentException($"--pivot-strength {s0} must be in (0, 1]");
        return new Settings(baseSize, strength, overrides,
            p.GetValue(PivotMode) == "bicubic" ? PivotResizeMode.Bicubic : PivotResizeMode.Bilinear,
            p.GetValue(SaveStages),
            p.GetValue(VaeTilingOption) switch { "on" => VaeTiling.On, "off" => VaeTiling.Off, _ => VaeTiling.Auto },
            (p.GetValue(Upsamplers) ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries),
            p.GetValue(UpsamplersPlainBelow));
    }

    private static PixelSize ToPixelSize((int W, int H) s) => new(s.W, s.H);

    private static List<double> ParseList(string? text, string option)
    {
        if (string.IsNullOrWhiteSpace(text)) return [];
        var list = new List<double>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || double.IsNaN(v))
                throw new ArgumentException($"{option}: '{part}' is not a number");
            list.Add(v);
        }
        return list;
    }

    public sealed record Settings(PixelSize? BaseSize, double? PivotStrength, IReadOnlyDictionary<int, StageSettings> Overrides,
        PivotResizeMode PivotMode, string? SaveStagesDir, VaeTiling Tiling, string[] UpsamplerDirs, double? PlainBelow)
    {
        /// <summary>The tuned cascade's injector from --upsamplers (null without); the caller disposes it.</summary>
        public FeatureUpsamplerInjector? CreateInjector(StableDiffusionPipeline pipe) => CreateInjector(pipe.Unet, pipe.DType);

        /// <summary>The sets checked against <paramref name="unet"/> (the image UNet they run in), in <paramref name="dtype"/>.</summary>
        public FeatureUpsamplerInjector? CreateInjector(UNet2DConditionModel unet, ScalarType dtype) => UpsamplerDirs.Length == 0 ? null :
            FeatureUpsamplerInjector.FromCheckpoints(UpsamplerDirs, unet,
                new FeatureUpsamplerInjectorOptions { PlainUNetAtOrBelowTimestep = PlainBelow }, dtype);

        public CascadeRequest ToRequest(GenerationRequest request, GenerationMethod method, StableDiffusionPipeline pipe,
            IStageFeatureInjector? injector = null) => new()
        {
            Request = request, Method = method, BaseSize = BaseSize, PivotStrength = PivotStrength, StageOverrides = Overrides,
            PivotMode = PivotMode, VaeTiling = Tiling, KeepStageImages = SaveStagesDir is not null, Injector = injector,
        };
    }
}
