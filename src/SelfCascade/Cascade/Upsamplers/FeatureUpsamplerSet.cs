using System.Text.Json;
using SelfCascade.IO;
using SelfCascade.Models;
using SelfCascade.Models.Unet;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SelfCascade.Cascade.Upsamplers;

/// <summary>
/// The time-aware feature upsamplers of one adaptation (stage r-1 → r, paper §4.2): one φ per injection point,
/// named <c>feature_upsampler{k}</c> in point order as in the released code (plus, for the lite variant, the shared
/// <c>time_proj</c>). A fresh set outputs exact zeros everywhere, so the tuned cascade starts as the tuning-free one.
/// Checkpoints are folders with <c>config.json</c> and <c>upsamplers.safetensors</c>.
/// </summary>
public sealed class FeatureUpsamplerSet : nn.Module
{
    public const string ConfigFileName = "config.json";
    public const string WeightsFileName = "upsamplers.safetensors";

    private readonly Linear? time_proj;
    private readonly List<FeatureUpsampler> _upsamplers = new();

    public FeatureUpsamplerConfig Config { get; private set; }
    public UpsamplerVariant Variant => Config.Variant;
    public IReadOnlyList<InjectionPoint> Points => Config.Points;

    private FeatureUpsamplerSet(FeatureUpsamplerConfig config) : base(nameof(FeatureUpsamplerSet))
    {
        Config = config;
        if (config.Variant == UpsamplerVariant.Lite) time_proj = nn.Linear(config.TimeEmbedDim, config.ConditionDim);
        RegisterComponents();
        for (int k = 0; k < config.Points.Count; k++)
        {
            FeatureUpsampler up = config.Variant == UpsamplerVariant.Full
                ? new FullFeatureUpsampler(config.Channels[k], config.TimeEmbedDim, config.NormGroups)
                : new LiteFeatureUpsampler(config.Channels[k], config.ConditionDim);
            _upsamplers.Add(up);
            register_module(ModuleName(k), up);
        }
    }

    /// <summary>The state-dict prefix of the k-th point's upsampler (released name).</summary>
    public static string ModuleName(int k) => $"feature_upsampler{k}";

    /// <summary>A fresh (zero-output) set for a UNet with <paramref name="unet"/>, parameters fp32 unless told.</summary>
    /// <param name="points">Injection points; null = <see cref="InjectionPoint.ReleasedDefault"/>.</param>
    /// <param name="stageScale">The side ratio it is meant for (recorded in the checkpoint).</param>
    public static FeatureUpsamplerSet Create(UpsamplerVariant variant, UNet2DConditionConfig unet, IReadOnlyList<InjectionPoint>? points = null,
        double? stageScale = null, Device? device = null, ScalarType? dtype = null) =>
        Build(FeatureUpsamplerConfig.For(variant, unet, points, stageScale), device, dtype);

    /// <summary>A fresh set for <paramref name="unet"/>, on its device; parameters fp32 unless told (trainable modules stay fp32).</summary>
    public static FeatureUpsamplerSet Create(UpsamplerVariant variant, UNet2DConditionModel unet, IReadOnlyList<InjectionPoint>? points = null,
        double? stageScale = null, ScalarType? dtype = null) =>
        Create(variant, unet.Config, points, stageScale, unet.Device, dtype);

    /// <summary>A set with <paramref name="config"/>'s layout (fresh weights).</summary>
    public static FeatureUpsamplerSet Build(FeatureUpsamplerConfig config, Device? device = null, ScalarType? dtype = null)
    {
        if (config.Channels.Count != config.Points.Count) throw new ArgumentException("one channel width per injection point is needed", nameof(config));
        using var _ = ModelConstruction.On(device ?? torch.CPU, dtype ?? ScalarType.Float32);
        return new FeatureUpsamplerSet(config);
    }

    public ScalarType DType => parameters().First().dtype;
    public Device Device => parameters().First().device;

    /// <summary>Every parameter (all of them train; the UNet stays frozen).</summary>
    public IReadOnlyList<Parameter> TrainableParameters() => parameters().ToList();

    public long ParameterCount => parameters().Sum(p => p.numel());

    /// <summary>Parameters of the point's upsampler alone (the lite variant's shared time_proj not included).</summary>
    public long PointParameterCount(InjectionPoint point) => Upsampler(point).parameters().Sum(p => p.numel());

    public bool Has(InjectionPoint point) => Points.Contains(point);

    public FeatureUpsampler Upsampler(InjectionPoint point)
    {
        int k = Points.ToList().IndexOf(point);
        if (k < 0) throw new ArgumentException($"this set has no upsampler at {point} (it has {string.Join(", ", Points)})", nameof(point));
        return _upsamplers[k];
    }

    /// <summary>
    /// The time condition the upsamplers read, from the UNet's `emb` (B, temb): full = emb itself (each block
    /// projects it, as released); lite = time_proj(SiLU(emb)), (B, k). Compute once per UNet call.
    /// </summary>
    public Tensor TimeCondition(Tensor emb)
    {
        using var scope = torch.NewDisposeScope();
        var e = emb.to(Device).to_type(DType);
        var c = time_proj is null ? e.alias() : time_proj.call(F.silu(e));
        return c.MoveToOuterDisposeScope();
    }

    /// <summary>φ(h_lr, t) at <paramref name="point"/> resized to (height, width), in <paramref name="lowRes"/>'s dtype and device.</summary>
    public Tensor Upsample(InjectionPoint point, Tensor lowRes, Tensor condition, long height, long width)
    {
        using var scope = torch.NewDisposeScope();
        var up = Upsampler(point);
        if (lowRes.dim() != 4 || lowRes.shape[1] != up.Channels)
            throw new ArgumentException($"{point}: low-res feature must be (B, {up.Channels}, h, w); got [{string.Join(",", lowRes.shape)}]", nameof(lowRes));
        var y = up.Forward(lowRes.to(Device).to_type(DType), condition, height, width);
        return y.to(lowRes.device).to_type(lowRes.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>Throws <see cref="InvalidOperationException"/> naming every mismatch when this set cannot run in a UNet with <paramref name="unet"/>.</summary>
    public void EnsureCompatible(UNet2DConditionConfig unet)
    {
        var problems = Config.Incompatibilities(unet);
        if (problems.Count > 0)
            throw new InvalidOperationException($"the {UpsamplerVariants.Name(Variant)} upsampler set ({string.Join(", ", Points)}) does not fit this UNet: {string.Join("; ", problems)}");
    }

    /// <summary>
    /// A feature hook that runs this set in <paramref name="unet"/>'s forward: pass <c>hook.Options</c> to
    /// <see cref="UNet2DConditionModel.Forward"/>. <paramref name="lowResLatent"/> is the clean low-res latent
    /// (scaled latent space), already batched like the UNet's sample (repeat it for CFG halves yourself);
    /// <paramref name="encoderHiddenStates"/> the same text states the UNet gets. The hook keeps references
    /// (aliases) to both; dispose it when done.
    /// </summary>
    public FeatureUpsamplerHook CreateHook(UNet2DConditionModel unet, Tensor lowResLatent, Tensor encoderHiddenStates,
        IEnumerable<InjectionPoint>? enabledPoints = null) =>
        new(this, unet, lowResLatent, encoderHiddenStates, enabledPoints);

    /// <summary>
    /// One training forward: the frozen UNet on the noisy high-res latent with this set active, the low-res branch
    /// (frozen encoder on the clean low-res latent, no gradient) feeding φ. Returns the noise prediction; gradients
    /// flow to this set's parameters (freeze the UNet's own with requires_grad_(false)).
    /// </summary>
    public Tensor TrainingForward(UNet2DConditionModel unet, Tensor noisyHighRes, Tensor timestep, Tensor lowResLatent,
        Tensor encoderHiddenStates, UNetAddedConditions? added = null)
    {
        using var hook = CreateHook(unet, lowResLatent, encoderHiddenStates);
        return unet.Forward(noisyHighRes, timestep, encoderHiddenStates, added, hook.Options);
    }

    /// <summary>Copies every parameter into a new set on <paramref name="device"/> / <paramref name="dtype"/> (e.g. fp16 for inference).</summary>
    public FeatureUpsamplerSet CopyTo(Device device, ScalarType dtype)
    {
        var copy = Build(Config, device, dtype);
        using var _ = torch.no_grad();
        var src = state_dict();
        foreach (var (name, t) in copy.state_dict()) t.copy_(src[name]);
        return copy;
    }

    // ---- checkpoints ----

    /// <summary>
    /// Writes <c>config.json</c> and <c>upsamplers.safetensors</c> into <paramref name="dir"/> atomically: both go
    /// to a temporary sibling folder first, which then replaces the old one by rename, so a crash mid-write leaves
    /// the last good checkpoint in place (at worst renamed <c>DIR.old-*</c> for an instant).
    /// </summary>
    public void Save(string dir, long? trainingSteps = null)
    {
        if (trainingSteps is long s) Config = Config with { TrainingSteps = s };
        var full = Path.GetFullPath(dir).TrimEnd(Path.DirectorySeparatorChar);
        var parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        var tag = Guid.NewGuid().ToString("N")[..8];
        var tmp = full + ".tmp-" + tag;
        try
        {
            Directory.CreateDirectory(tmp);
            SafeTensorsWriter.Save(Path.Combine(tmp, WeightsFileName), state_dict(),
                new Dictionary<string, string> { ["format"] = "pt", ["selfcascade"] = "feature_upsamplers" });
            File.WriteAllText(Path.Combine(tmp, ConfigFileName), Config.ToJson());
            if (Directory.Exists(full))
            {
                var old = full + ".old-" + tag;
                Directory.Move(full, old);
                Directory.Move(tmp, full);
                Directory.Delete(old, true);
            }
            else Directory.Move(tmp, full);
        }
        finally
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
        }
    }

    /// <summary>The subfolder a training run's output folder keeps its checkpoint in (train-upsamplers --out DIR writes DIR/upsamplers).</summary>
    public const string TrainingOutputSubfolder = "upsamplers";

    /// <summary>
    /// The checkpoint folder for <paramref name="dir"/>: itself when it holds <c>config.json</c>; else, when it is a
    /// training run's output folder, its <see cref="TrainingOutputSubfolder"/> (the name is fixed, never read from a file).
    /// </summary>
    public static string ResolveCheckpointDir(string dir)
    {
        if (File.Exists(Path.Combine(dir, ConfigFileName))) return dir;
        var inner = Path.Combine(dir, TrainingOutputSubfolder);
        return File.Exists(Path.Combine(inner, ConfigFileName)) ? inner : dir;
    }

    /// <summary>Reads a checkpoint's <c>config.json</c> (<paramref name="dir"/> as <see cref="ResolveCheckpointDir"/> takes it).</summary>
    public static FeatureUpsamplerConfig ReadConfig(string dir)
    {
        dir = ResolveCheckpointDir(dir);
        var path = Path.Combine(dir, ConfigFileName);
        if (!Directory.Exists(dir)) throw new UpsamplerCheckpointException($"upsampler checkpoint {dir}: folder not found");
        if (!File.Exists(path))
            throw new UpsamplerCheckpointException($"upsampler checkpoint {dir}: {ConfigFileName} is missing (here and in its {TrainingOutputSubfolder}/ subfolder)");
        try { return FeatureUpsamplerConfig.Parse(File.ReadAllText(path), path); }
        catch (Exception e) when (e is ConfigException or JsonException)
        {
            throw new UpsamplerCheckpointException($"upsampler checkpoint {dir}: {ConfigFileName} is invalid: {e.Message}", e);
        }
    }

    /// <summary>Loads a checkpoint for <paramref name="unet"/> (on its device and, unless told, fp32).</summary>
    public static FeatureUpsamplerSet Load(string dir, UNet2DConditionModel unet, Device? device = null, ScalarType? dtype = null) =>
        Load(dir, unet.Config, device ?? unet.Device, dtype);

    /// <summary>
    /// Loads a checkpoint, checking first that it fits a UNet with <paramref name="unet"/> (every mismatching
    /// width named), then that the weights file holds exactly the expected tensors (every missing, unexpected and
    /// mis-shaped key named). All failures are <see cref="UpsamplerCheckpointException"/>.
    /// </summary>
    public static FeatureUpsamplerSet Load(string dir, UNet2DConditionConfig unet, Device? device = null, ScalarType? dtype = null)
    {
        dir = ResolveCheckpointDir(dir);
        var config = ReadConfig(dir);
        var problems = config.Incompatibilities(unet);
        if (problems.Count > 0)
            throw new UpsamplerCheckpointException($"upsampler checkpoint {dir} does not fit this UNet: {string.Join("; ", problems)}");
        var weights = Path.Combine(dir, WeightsFileName);
        if (!File.Exists(weights)) throw new UpsamplerCheckpointException($"upsampler checkpoint {dir}: {WeightsFileName} is missing");
        var set = Build(config, device, dtype);
        try
        {
            WeightLoader.Load(set, [weights]);
            return set;
        }
        catch (Exception e) when (e is IOException or ArgumentException or InvalidOperationException)
        {
            set.Dispose();
            throw new UpsamplerCheckpointException($"upsampler checkpoint {dir}: {WeightsFileName} is unusable: {e.Message}", e);
        }
    }
}
