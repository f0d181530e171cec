using SelfCascade.Cascade;
using SelfCascade.IO;
using SelfCascade.Models.Unet;
using SelfCascade.Models.Vae;
using static TorchSharp.torch;

namespace SelfCascade.Pipelines;

/// <summary>What planning needs of a model: native size, VAE factor, UNet depth; read from configs or a loaded pipeline.</summary>
public sealed record ModelGeometry(int NativeSize, int VaeScaleFactor, int UnetBlocks, ModelFamily Family, int BytesPerElement = 4)
{
    public ModelDefaults Defaults { get; init; } = new();
    /// <summary>The VAE config's sample_size: diffusers' default tile size for a tiled decode.</summary>
    public int VaeTileSize { get; init; } = TiledVaeOptions.DefaultTileSampleSize;
    public double DefaultGuidance => Defaults.Guidance ?? (Family == ModelFamily.StableDiffusionXL ? 5.0 : 7.5);
    public double DefaultPivotStrength => Defaults.PivotStrength ?? ModelDefaults.PaperPivotStrength;

    public static ModelGeometry Of(StableDiffusionPipeline pipe) =>
        new(pipe.NativeSize, pipe.VaeScaleFactor, pipe.Unet.Config.NumBlocks, pipe.Family, pipe.DType == ScalarType.Float32 ? 4 : 2)
        {
            Defaults = pipe.Defaults,
            VaeTileSize = pipe.TileOptionsFor(null).TileSampleSize,
        };

    /// <summary>From a diffusers folder's configs only: sample_size x 2^(VAE blocks - 1).</summary>
    public static ModelGeometry FromFolder(string dir, ScalarType dtype = ScalarType.Float32, SelfCascade.Checkpoints.SingleFile.SingleFileOptions? singleFile = null)
    {
        if (File.Exists(dir))
        {
            // A single-file checkpoint: its (built-in or --config) configs, no weights read.
            using var components = SelfCascade.Checkpoints.ModelSource.OpenComponents(dir, singleFile);
            var u = UNet2DConditionConfig.FromJson(components.Config("unet"));
            var v = components.Has("vae") ? AutoencoderKLConfig.FromJson(components.Config("vae")) : null;
            int f = v?.ScaleFactor ?? 1;
            return new ModelGeometry((u.SampleSize ?? 64) * f, f, u.NumBlocks, components.Family, dtype == ScalarType.Float32 ? 4 : 2)
            {
                Defaults = ModelDefaults.From(components.ModelIndex),
                VaeTileSize = v?.SampleSize ?? TiledVaeOptions.DefaultTileSampleSize,
            };
        }
        var folder = DiffusersModelFolder.Open(dir);
        var unet = UNet2DConditionConfig.Load(Path.Combine(folder.ComponentDir("unet"), "config.json"));
        var vae = folder.Has("vae") ? AutoencoderKLConfig.Load(Path.Combine(folder.ComponentDir("vae"), "config.json")) : null;
        int vaeFactor = vae?.ScaleFactor ?? 1;
        return new ModelGeometry((unet.SampleSize ?? 64) * vaeFactor, vaeFactor, unet.NumBlocks, folder.DetectFamily(),
            dtype == ScalarType.Float32 ? 4 : 2)
        {
            Defaults = ModelDefaults.Read(Path.Combine(folder.Root, "model_index.json")),
            VaeTileSize = vae?.SampleSize ?? TiledVaeOptions.DefaultTileSampleSize,
        };
    }
}
