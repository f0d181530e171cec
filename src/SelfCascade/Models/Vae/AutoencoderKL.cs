using System.Text.RegularExpressions;
using SelfCascade.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Models.Vae;

/// <summary>
/// diffusers `AutoencoderKL`: `encoder`, `quant_conv` (1x1, when `use_quant_conv`), `post_quant_conv` (1x1, when
/// `use_post_quant_conv`), `decoder`. <see cref="Encode"/> gives the posterior; <see cref="Decode"/> the raw
/// decoder output (no scaling or shift: the pipeline divides latents by <see cref="ScalingFactor"/> first).
/// Accepts checkpoints with the old attention names (query/key/value/proj_attn), as diffusers does.
/// </summary>
public sealed partial class AutoencoderKL : nn.Module, ILegacyKeyMap
{
    private readonly Encoder encoder;
    private readonly Decoder decoder;
    private readonly Conv2d? quant_conv;
    private readonly Conv2d? post_quant_conv;

    public AutoencoderKLConfig Config { get; }

    public AutoencoderKL(AutoencoderKLConfig config) : base(nameof(AutoencoderKL))
    {
        Config = config;
        encoder = new Encoder(config);
        decoder = new Decoder(config);
        long z = config.LatentChannels;
        if (config.UseQuantConv) quant_conv = nn.Conv2d(2 * z, 2 * z, 1, stride: 1, padding: 0L);
        if (config.UsePostQuantConv) post_quant_conv = nn.Conv2d(z, z, 1, stride: 1, padding: 0L);
        RegisterComponents();
    }

    /// <summary>Loads `config.json` and the safetensors weights of a diffusers `vae` folder.</summary>
    public static AutoencoderKL FromPretrained(string componentDir, Device? device = null, ScalarType? dtype = null,
        string? variant = null)
    {
        var config = AutoencoderKLConfig.Load(Path.Combine(componentDir, "config.json"));
        var files = WeightLoader.ResolveWeightFiles(componentDir, variant);
        return ModelConstruction.BuildLoaded(() => new AutoencoderKL(config), m => WeightLoader.Load(m, files), device, dtype);
    }

    /// <summary>Builds the network from <paramref name="config"/> and streams weights from open tensor sources.</summary>
    public static AutoencoderKL FromWeights(AutoencoderKLConfig config, IReadOnlyList<ITensorSource> sources,
        Device? device = null, ScalarType? dtype = null)
    {
        return ModelConstruction.BuildLoaded(() => new AutoencoderKL(config), m => WeightLoader.Load(m, sources), device, dtype);
    }

    public double ScalingFactor => Config.ScalingFactor;
    public double? ShiftFactor => Config.ShiftFactor;
    /// <summary>Image pixels per latent pixel along a side (8 for the SD VAEs).</summary>
    public int DownsampleFactor => 1 << (Config.NumBlocks - 1);
    public ScalarType DType => encoder.parameters().First().dtype;
    public Device Device => encoder.parameters().First().device;

    /// <summary>The posterior for images (B, in_channels, H, W) in [-1, 1].</summary>
    public DiagonalGaussianDistribution Encode(Tensor image)
    {
        if (image.dim() != 4 || image.shape[1] != Config.InChannels)
            throw new ArgumentException($"image must be (B, {Config.InChannels}, H, W); got [{string.Join(",", image.shape)}]", nameof(image));
        using var scope = torch.NewDisposeScope();
        var moments = encoder.call(image);
        if (quant_conv is not null) moments = quant_conv.call(moments);
        return new DiagonalGaussianDistribution(moments);
    }

    /// <summary>The decoder's output (B, out_channels, H, W), roughly in [-1, 1], for unscaled latents (B, latent_channels, h, w).</summary>
    public Tensor Decode(Tensor latent)
    {
        if (latent.dim() != 4 || latent.shape[1] != Config.LatentChannels)
            throw new ArgumentException($"latent must be (B, {Config.LatentChannels}, h, w); got [{string.Join(",", latent.shape)}]", nameof(latent));
        using var scope = torch.NewDisposeScope();
        var z = post_quant_conv is null ? latent : post_quant_conv.call(latent);
        return decoder.call(z).MoveToOuterDisposeScope();
    }

    // Old diffusers VAE checkpoints name the mid-block attention's projections query/key/value/proj_attn
    // (diffusers converts them on load, `_convert_deprecated_attention_blocks`).
    [GeneratedRegex(@"^(?<prefix>.*\.attentions\.\d+)\.(?<old>query|key|value|proj_attn)\.(?<param>weight|bias)$")]
    private static partial Regex LegacyAttentionKey();

    public string? MapLegacyKey(string key)
    {
        var m = LegacyAttentionKey().Match(key);
        if (!m.Success) return null;
        var current = m.Groups["old"].Value switch
        {
            "query" => "to_q",
            "key" => "to_k",
            "value" => "to_v",
            _ => "to_out.0",
        };
        return $"{m.Groups["prefix"].Value}.{current}.{m.Groups["param"].Value}";
    }

    public bool IsIgnorableKey(string key) => false;
}
