using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using SelfCascade.Imaging;
using SelfCascade.IO;
using SelfCascade.Models;
using SelfCascade.Models.Clip;
using SelfCascade.Models.Unet;
using SelfCascade.Pipelines;
using SelfCascade.Runtime;
using SelfCascade.Schedulers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SelfCascade.Training;

/// <summary>
/// Trains a small text-conditioned base model from scratch in pixel space (no VAE: the "latent" is the RGB image,
/// in [-1, 1]): a UNet2DConditionModel and a CLIP-architecture text encoder jointly, with the regression loss of
/// diffusers' train_text_to_image.py: <c>x_t = add_noise(x0, ε, t)</c>, t ~ U{0..T-1}, MSE between the UNet output
/// and the scheduler's training target (ε or v). Text states: the encoder's last hidden state over the 77 CLIP tokens,
/// as the pipeline uses it. EMA copies of both networks (diffusers' EMAModel) give the previews and the export.
/// </summary>
public sealed class BaseModelTask : TrainingTask
{
    private readonly BaseModelPreset _preset;
    private readonly BaseModelOptions _options;
    private readonly ClipTokenizer _tokenizer;
    private readonly UNet2DConditionModel _unet;
    private readonly ClipTextModel _text;
    private readonly UNet2DConditionModel? _emaUnet;
    private readonly ClipTextModel? _emaText;
    private readonly ExponentialMovingAverage? _ema;
    private readonly NoiseScheduler _scheduler;
    private readonly (string, Parameter)[] _trainable;
    private readonly Dictionary<string, long[]> _tokenCache = new(StringComparer.Ordinal);
    private readonly IReadOnlyList<string> _previewPrompts;
    private readonly Device _device;
    private readonly long _seed;

    public const string EmaGroup = "ema";

    public BaseModelTask(BaseModelPreset preset, BaseModelOptions options, ClipTokenizer tokenizer, ImageFolderDataset data, long seed)
    {
        _preset = preset; _options = options; _tokenizer = tokenizer; _seed = seed;
        _device = TorchRuntime.ResolveDevice(options.Device);
        var unetConfig = preset.UnetConfig(options.Size);
        int factor = 1 << (unetConfig.NumBlocks - 1);
        if (options.Size % factor != 0) throw new ArgumentException($"size {options.Size} must be a multiple of {factor} for a UNet with {unetConfig.NumBlocks} blocks");
        var textConfig = preset.TextConfig();
        _scheduler = SchedulerFactory.Create(options.SchedulerConfig());

        // Initial weights from the seed (the global generator is what TorchSharp's layer initialisers draw from).
        torch.manual_seed(seed);
        using (ModelConstruction.On(_device, ScalarType.Float32))
        {
            _unet = new UNet2DConditionModel(unetConfig);
            _text = new ClipTextModel(textConfig, _device, ScalarType.Float32);
            if (options.EmaDecay > 0)
            {
                _emaUnet = new UNet2DConditionModel(unetConfig);
                _emaText = new ClipTextModel(textConfig, _device, ScalarType.Float32);
            }
        }
        FreshWeights.Initialize(_unet);
        FreshWeights.Initialize(_text);
        if (options.InitFrom is string init)
        {
            // Fine-tuning: the exported (fp16) weights stream into the fp32 networks; a shape mismatch is a clear error.
            WeightLoader.Load(_unet, WeightLoader.ResolveWeightFiles(Path.Combine(init, "unet")));
            WeightLoader.Load(_text, WeightLoader.ResolveWeightFiles(Path.Combine(init, "text_encoder")));
        }
        var unetParams = _unet.named_parameters().Select(p => ("unet." + p.name, p.parameter));
        var textParams = _text.named_parameters().Select(p => ("text_encoder." + p.name, p.parameter));
        _trainable = (options.TrainTextEncoder ? unetParams.Concat(textParams) : unetParams).ToArray();
        if (!options.TrainTextEncoder) foreach (var p in _text.parameters()) p.requires_grad = false;
        if (_emaUnet is not null && _emaText is not null)
        {
            CopyWeights(_unet, _emaUnet);
            CopyWeights(_text, _emaText);
            foreach (var p in _emaUnet.parameters().Concat(_emaText.parameters())) p.requires_grad = false;
            _emaUnet.eval();
            _emaText.eval();
            var pairs = Pairs("unet.", _unet, _emaUnet).Concat(Pairs("text_encoder.", _text, _emaText));
            _ema = new ExponentialMovingAverage(pairs, options.EmaDecay);
        }
        _unet.train();
        if (options.TrainTextEncoder) _text.train(); else _text.eval();
        _previewPrompts = options.PreviewPrompts is { Count: > 0 } given ? given
            : Enumerable.Range(0, data.Count).Select(data.CaptionAt).Where(c => c.Length > 0).Distinct().Take(4).DefaultIfEmpty("").ToList();
    }

    public UNet2DConditionModel Unet => _unet;
    public ClipTextModel TextEncoder => _text;
    /// <summary>The networks previews and the export use: the EMA copies, or the live ones without EMA.</summary>
    public UNet2DConditionModel ExportUnet => _emaUnet ?? _unet;
    public ClipTextModel ExportTextEncoder => _emaText ?? _text;
    public ExponentialMovingAverage? Ema => _ema;
    public IReadOnlyList<string> PreviewPrompts => _previewPrompts;
    public long UnetParameterCount => _unet.parameters().Sum(p => p.numel());
    public long TextEncoderParameterCount => _text.parameters().Sum(p => p.numel());

    public override Device Device => _device;
    public override IReadOnlyList<(string Name, Parameter Parameter)> TrainableParameters => _trainable;
    /// <summary>None: both networks train. (The EMA copies take no gradients but do change, so they are not "frozen".)</summary>
    public override IReadOnlyList<nn.Module> FrozenModules => _options.TrainTextEncoder ? [] : [_text];

    public override IReadOnlyDictionary<string, string> Fingerprint => new Dictionary<string, string>
    {
        ["preset"] = _preset.UnetJsonFor(_options.Size).ToJsonString() + _preset.TextEncoderJson.ToJsonString(),
        ["scheduler"] = PixelModelExporter.SchedulerJson(_options.SchedulerConfig()).ToJsonString(),
        ["ema_decay"] = _options.EmaDecay.ToString("R", CultureInfo.InvariantCulture),
        ["device"] = _device.ToString(),
        ["init_from"] = _options.InitFrom is null ? "" : Path.GetFullPath(_options.InitFrom),
        ["train_text_encoder"] = _options.TrainTextEncoder ? "true" : "false",
    }.Concat(_options.SnrGamma > 0
        ? [new KeyValuePair<string, string>("snr_gamma", _options.SnrGamma.ToString("R", CultureInfo.InvariantCulture))]
        : []).ToDictionary(); // only when set: checkpoints of unweighted runs keep resuming

    public override Tensor Loss(TrainingBatch batch, Generator generator)
    {
        using var scope = NewDisposeScope();
        var x0 = batch.Images.to(_device);
        long b = x0.shape[0];
        // Drawn on the CPU generator, then moved (as diffusers' randn_tensor), so the stream is device-independent.
        var noise = randn(x0.shape, dtype: ScalarType.Float32, generator: generator).to(_device);
        var t = randint(0, _scheduler.Config.NumTrainTimesteps, [b], dtype: ScalarType.Int64, generator: generator).to(_device);
        var noisy = _scheduler.AddTrainingNoise(x0, noise, t);
        var ids = TokenIds(batch.Captions).to(_device);
        var states = _text.Forward(ids).LastHiddenState;
        var pred = _unet.Forward(noisy, t, states);
        var target = _scheduler.GetTrainingTarget(x0, noise, t);
        if (_options.SnrGamma > 0)
            return MinSnrWeighting.WeightedMse(pred, target, _scheduler.AlphasCumprod, t.cpu().data<long>().ToArray(),
                _options.SnrGamma, _options.PredictionType).MoveToOuterDisposeScope();
        return F.mse_loss(pred.to(ScalarType.Float32), target).MoveToOuterDisposeScope();
    }

    /// <summary>(B, 77) token ids of the captions, padded and truncated as the pipeline's prompt encoder does.</summary>
    public Tensor TokenIds(IReadOnlyList<string> captions)
    {
        var rows = new long[captions.Count][];
        for (int i = 0; i < captions.Count; i++)
        {
            if (!_tokenCache.TryGetValue(captions[i], out var ids))
            {
                ids = _tokenizer.Encode(captions[i]).Select(x => (long)x).ToArray();
                _tokenCache[captions[i]] = ids;
            }
            rows[i] = ids;
        }
        int len = rows.Length == 0 ? 0 : rows[0].Length;
        return tensor(rows.SelectMany(r => r).ToArray(), [rows.Length, len], ScalarType.Int64);
    }

    public override void AfterOptimizerStep(long step) => _ema?.Update();

    public override IReadOnlyDictionary<string, IEnumerable<KeyValuePair<string, Tensor>>> ExtraState() =>
        _ema is null ? new Dictionary<string, IEnumerable<KeyValuePair<string, Tensor>>>()
            : new Dictionary<string, IEnumerable<KeyValuePair<string, Tensor>>> { [EmaGroup] = _ema.StateTensors() };

    public override IReadOnlyDictionary<string, string> ExtraValues() => _ema is null
        ? new Dictionary<string, string>()
        : new Dictionary<string, string> { ["ema_updates"] = _ema.UpdateCount.ToString(CultureInfo.InvariantCulture) };

    public override void LoadExtraState(Checkpoint checkpoint)
    {
        if (_ema is null) return;
        if (!checkpoint.State.Values.TryGetValue("ema_updates", out var n) || !long.TryParse(n, NumberStyles.Integer, CultureInfo.InvariantCulture, out var updates))
            throw new CheckpointException($"{checkpoint.Directory}: checkpoint has no EMA update count");
        _ema.LoadState(checkpoint.Reader(EmaGroup), updates);
    }

    public override bool OnStepEnd(long step, string outputDir)
    {
        if (_options.PreviewEvery <= 0 || step % _options.PreviewEvery != 0) return false;
        SavePreview(Path.Combine(outputDir, "previews", $"step-{step:D8}.png"));
        return true;
    }

    public override void Finish(string outputDir)
    {
        SavePreview(Path.Combine(outputDir, "previews", "final.png"));
        Export(Path.Combine(outputDir, BaseModelTraining.ModelFolder));
    }

    /// <summary>
    /// A labelled row of images, one per preview prompt (seed = its index), sampled by the text-to-image pipeline
    /// with the EMA weights, DDIM, and classifier-free guidance; enlarged (nearest neighbour) to about 128 px.
    /// </summary>
    public RgbImage RenderPreview()
    {
        using var pipe = PreviewPipeline();
        var cells = new List<(RgbImage, string)>();
        int scale = Math.Max(1, 128 / _options.Size);
        for (int i = 0; i < _previewPrompts.Count; i++)
        {
            using var result = pipe.Generate(new GenerationRequest(_previewPrompts[i])
            {
                Steps = _options.PreviewSteps, Guidance = _options.PreviewGuidance, Seed = i,
                Width = _options.Size, Height = _options.Size,
            });
            cells.Add((Enlarge(result.Images[0], scale), _previewPrompts[i]));
        }
        return ImageGrid.Compose(cells);
    }

    /// <summary>Nearest-neighbour enlargement by an integer factor (so 32 px previews are visible).</summary>
    public static RgbImage Enlarge(RgbImage image, int scale)
    {
        if (scale == 1) return image;
        var big = new RgbImage(image.Width * scale, image.Height * scale);
        for (int y = 0; y < big.Height; y++)
            for (int x = 0; x < big.Width; x++)
                Array.Copy(image.Pixels, ((y / scale) * image.Width + x / scale) * 3, big.Pixels, (y * big.Width + x) * 3, 3);
        return big;
    }

    public void SavePreview(string path)
    {
        bool wasTraining = _unet.training;
        var grid = RenderPreview();
        grid.SavePng(path, new Dictionary<string, string> { ["prompts"] = string.Join("\n", _previewPrompts) });
        if (wasTraining) { _unet.train(); _text.train(); }
    }

    /// <summary>A pipeline over the export networks (not owning them): pixel space, no VAE, DDIM.</summary>
    public StableDiffusionPipeline PreviewPipeline()
    {
        var scheduler = SchedulerFactory.Create(_options.SchedulerConfig());
        var prompts = new PromptEncoder(_tokenizer, ExportTextEncoder);
        var family = DiffusersModelFolder.DetectFamily(ConfigJson.Parse(_preset.UnetJsonFor(_options.Size).ToJsonString()),
            ConfigJson.Parse(_preset.TextEncoderJson.ToJsonString()));
        return new StableDiffusionPipeline(family, ExportUnet, null, scheduler, prompts, _device, ScalarType.Float32, [scheduler]);
    }

    /// <summary>Writes the diffusers folder (EMA weights when EMA is on) in the export dtype.</summary>
    public void Export(string dir) => PixelModelExporter.Save(dir, ExportUnet, _preset.UnetJsonFor(_options.Size),
        ExportTextEncoder, _preset.TextEncoderJson, _options.SchedulerConfig(), _options.TokenizerDir, _options.ExportDType);

    private static IEnumerable<(string, Tensor, Tensor)> Pairs(string prefix, nn.Module live, nn.Module shadow)
    {
        var s = shadow.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        return live.named_parameters().Select(p => (prefix + p.name, (Tensor)p.parameter, s[p.name]));
    }

    private static void CopyWeights(nn.Module from, nn.Module to)
    {
        using var noGrad = no_grad();
        var dest = to.state_dict();
        foreach (var (k, v) in from.state_dict()) dest[k].copy_(v);
    }

    public override void Dispose()
    {
        _unet.Dispose();
        _text.Dispose();
        _emaUnet?.Dispose();
        _emaText?.Dispose();
        _scheduler.Dispose();
        base.Dispose();
    }
}
