using System.CommandLine;
using SelfCascade.Cascade.Upsamplers;
using SelfCascade.Models.Unet;

namespace SelfCascade.Cli.Commands;

/// <summary>
/// `selfcascade convert-upsamplers`: the released SDXL upsampler checkpoint (`upsampler_only.pth`) to an upsampler
/// checkpoint folder (config.json + upsamplers.safetensors, full variant) for the model's UNet. Needs no Python and
/// reads only the model's unet/config.json.
/// </summary>
public static class ConvertUpsamplersCommand
{
    public static Command Create(CliConsole console)
    {
        var input = new Option<string>("--in") { Description = "The released checkpoint (upsampler_only.pth)", Required = true };
        var model = new Option<string>("--model") { Description = "The diffusers model folder (or its unet folder) it was trained for", Required = true };
        var output = new Option<string>("--out") { Description = "Output checkpoint folder (written atomically)", Required = true };
        var scale = new Option<double>("--stage-scale") { Description = "Side ratio the checkpoint adapts (released: 1024 → 2048 = 2)", DefaultValueFactory = _ => 2.0 };
        var cmd = new Command("convert-upsamplers", "Convert the released Self-Cascade upsampler checkpoint (.pth) to an upsampler folder")
        {
            input, model, output, scale,
        };
        cmd.SetAction(p => console.Guard(p.GetValue(CliApp.LibTorchOption), () =>
        {
            var unetConfig = UNet2DConditionConfig.Load(UnetConfigPath(p.GetValue(model)!));
            using var set = ReleasedUpsamplerImporter.Import(p.GetValue(input)!, unetConfig, p.GetValue(scale));
            var outDir = p.GetValue(output)!;
            set.Save(outDir);
            console.Out.WriteLine($"{Path.GetFullPath(outDir)}: {UpsamplerVariants.Name(set.Variant)} upsamplers at {string.Join(", ", set.Points)}, {set.ParameterCount:N0} parameters");
            return 0;
        }));
        return cmd;
    }

    /// <summary>MODEL/unet/config.json, or MODEL/config.json when MODEL is the unet folder itself.</summary>
    public static string UnetConfigPath(string model)
    {
        var nested = Path.Combine(model, "unet", "config.json");
        if (File.Exists(nested)) return nested;
        var direct = Path.Combine(model, "config.json");
        if (File.Exists(direct)) return direct;
        throw new FileNotFoundException($"{model}: no unet/config.json (nor config.json) found", nested);
    }
}
