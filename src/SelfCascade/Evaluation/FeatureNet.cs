using System.Globalization;
using SelfCascade.Imaging;
using SelfCascade.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Evaluation;

/// <summary>Shape of a <see cref="FeatureNet"/>.</summary>
/// <param name="NumClasses">Outputs of the classification head used for training.</param>
/// <param name="InputSize">Every image is resized (antialiased) to InputSize×InputSize before the network, so
/// features of 32 px crops and 256 px images live in one space, as Inception's 299 px input does for FID.</param>
/// <param name="BaseChannels">Width of the first conv; the next ones double it.</param>
/// <param name="EmbeddingDim">Channels of the last conv = the feature (penultimate) dimension.</param>
public sealed record FeatureNetConfig(int NumClasses, int InputSize = 64, int BaseChannels = 16, int EmbeddingDim = 128)
{
    internal void Validate()
    {
        if (NumClasses < 1) throw new ArgumentOutOfRangeException(nameof(NumClasses), NumClasses, "at least one class");
        if (InputSize < 8) throw new ArgumentOutOfRangeException(nameof(InputSize), InputSize, "input must be at least 8 px (three stride-2 stages)");
        if (BaseChannels < 8 || BaseChannels % 8 != 0) throw new ArgumentOutOfRangeException(nameof(BaseChannels), BaseChannels, "a positive multiple of 8 (GroupNorm with 8 groups)");
        if (EmbeddingDim < 8 || EmbeddingDim % 8 != 0) throw new ArgumentOutOfRangeException(nameof(EmbeddingDim), EmbeddingDim, "a positive multiple of 8 (GroupNorm with 8 groups)");
    }
}

/// <summary>Conv 3×3 → GroupNorm(8) → SiLU.</summary>
internal sealed class ConvNormAct : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv;
    private readonly GroupNorm norm;

    public ConvNormAct(long inChannels, long outChannels, long stride) : base(nameof(ConvNormAct))
    {
        conv = nn.Conv2d(inChannels, outChannels, 3, stride: stride, padding: 1);
        norm = SelfCascade.Models.Blocks.Norms.GroupNorm(8, outChannels);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return nn.functional.silu(norm.forward(SelfCascade.Models.Blocks.CpuConv2d.Forward(conv, x))).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// The project's small feature network for FD/KID on emoji renders: four ConvNormAct layers (stride 1, 2, 2, 2;
/// channels c, 2c, 4c, EmbeddingDim), global average pooling to the embedding (the features), and a linear
/// classification head used only for training. Input: (N, 3, S, S) in [-1, 1], S = <see cref="FeatureNetConfig.InputSize"/>.
/// State-dict names: <c>layers.{0..3}.conv|norm.weight|bias</c>, <c>head.weight|bias</c>.
/// </summary>
public sealed class FeatureNet : nn.Module<Tensor, Tensor>
{
    private const string ConfigKey = "feature_net_config";
    private const string ClassesKey = "feature_net_classes";
    private readonly ModuleList<nn.Module<Tensor, Tensor>> layers;
    private readonly Linear head;

    public FeatureNetConfig Config { get; }

    /// <summary>What each output of the head means (e.g. the caption a class stands for), saved with the weights; null when not given.</summary>
    public IReadOnlyList<string>? ClassNames { get; set; }

    /// <summary>Builds the network with deterministic initial weights drawn from a generator seeded <paramref name="seed"/>.</summary>
    public FeatureNet(FeatureNetConfig config, long seed = 0) : base(nameof(FeatureNet))
    {
        config.Validate();
        Config = config;
        long c = config.BaseChannels;
        layers = nn.ModuleList<nn.Module<Tensor, Tensor>>(
            new ConvNormAct(3, c, 1), new ConvNormAct(c, 2 * c, 2), new ConvNormAct(2 * c, 4 * c, 2), new ConvNormAct(4 * c, config.EmbeddingDim, 2));
        head = nn.Linear(config.EmbeddingDim, config.NumClasses);
        RegisterComponents();
        Initialise(seed);
    }

    /// <summary>Logits (N, NumClasses).</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return head.forward(Embed(x)).MoveToOuterDisposeScope();
    }

    /// <summary>The features: global average of the last layer, (N, EmbeddingDim).</summary>
    public Tensor Embed(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x;
        foreach (var layer in layers) h = layer.forward(h);
        return h.mean([2, 3]).MoveToOuterDisposeScope();
    }

    /// <summary>Images as the network's (N, 3, S, S) float32 input in [-1, 1], each resized with <see cref="ImageTensors.ResizeAntialiased"/>.</summary>
    public Tensor Preprocess(IReadOnlyList<RgbImage> images)
    {
        using var scope = NewDisposeScope();
        int s = Config.InputSize;
        var list = images.Select(img => ImageTensors.ResizeAntialiased(img.ToTensor(), s, s)).ToList();
        return cat(list, 0).MoveToOuterDisposeScope();
    }

    /// <summary>Saves the weights (safetensors) with the config in the file's metadata.</summary>
    public void Save(string path)
    {
        var config = string.Join(",", new[] { Config.NumClasses, Config.InputSize, Config.BaseChannels, Config.EmbeddingDim }
            .Select(v => v.ToString(CultureInfo.InvariantCulture)));
        var metadata = new Dictionary<string, string> { [ConfigKey] = config };
        if (ClassNames is { } names)
        {
            if (names.Count != Config.NumClasses) throw new InvalidOperationException($"{names.Count} class names for {Config.NumClasses} classes");
            metadata[ClassesKey] = System.Text.Json.JsonSerializer.Serialize(names);
        }
        SafeTensorsWriter.Save(path, state_dict(), metadata);
    }

    /// <summary>Loads a network saved by <see cref="Save"/> (strict: every key and shape must match).</summary>
    public static FeatureNet Load(string path)
    {
        FeatureNetConfig config;
        List<string>? names = null;
        using (var file = SafeTensorsFile.Open(path))
        {
            if (!file.Metadata.TryGetValue(ConfigKey, out var text))
                throw new InvalidDataException($"{path}: no '{ConfigKey}' metadata, not a FeatureNet file");
            var v = text.Split(',').Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToArray();
            if (v.Length != 4) throw new InvalidDataException($"{path}: '{ConfigKey}' should hold 4 numbers, found '{text}'");
            config = new FeatureNetConfig(v[0], v[1], v[2], v[3]);
            if (file.Metadata.TryGetValue(ClassesKey, out var json))
            {
                names = System.Text.Json.JsonSerializer.Deserialize<List<string>>(json);
                if (names is null || names.Count != config.NumClasses)
                    throw new InvalidDataException($"{path}: '{ClassesKey}' should list {config.NumClasses} names");
            }
        }
        var net = new FeatureNet(config) { ClassNames = names };
        WeightLoader.Load(net, [path]);
        return net;
    }

    /// <summary>PyTorch's default init: Conv/Linear <c>U(-1/sqrt(fan_in), 1/sqrt(fan_in))</c> for weights and biases from a seeded generator; GroupNorm γ = 1, β = 0.</summary>
    private void Initialise(long seed)
    {
        using var generator = new Generator((ulong)seed, CPU);
        using var noGrad = no_grad();
        foreach (var module in modules())
        {
            if (module is Conv2d conv) InitUniform(conv.weight!, conv.bias, generator);
            else if (module is Linear linear) InitUniform(linear.weight!, linear.bias, generator);
            else if (module is GroupNorm norm)
            {
                // TorchSharp 0.107 leaves GroupNorm's affine parameters uninitialised (seen: 1e14 and NaN); PyTorch uses 1 and 0.
                nn.init.ones_(norm.weight!);
                nn.init.zeros_(norm.bias!);
            }
        }
    }

    private static void InitUniform(Tensor weight, Tensor? bias, Generator generator)
    {
        double fanIn = weight.shape.Skip(1).Aggregate(1L, (a, b) => a * b);
        double bound = 1.0 / Math.Sqrt(fanIn);
        FillUniform(weight, bound, generator);
        if (bias is not null) FillUniform(bias, bound, generator);
    }

    /// <summary><c>x ~ U(-b, b)</c> drawn with <c>torch.rand</c> on the given generator (in 0.107, <c>nn.init.uniform_</c>
    /// did not give repeatable values for a seeded generator).</summary>
    private static void FillUniform(Tensor target, double bound, Generator generator)
    {
        using var scope = NewDisposeScope();
        var u = rand(target.shape, ScalarType.Float32, generator: generator);
        target.copy_(u * (2 * bound) - bound);
    }
}
