using SelfCascade.Checkpoints.SingleFile.KeyMaps;
using SelfCascade.IO;
using SelfCascade.Models;
using SelfCascade.Models.Clip;
using SelfCascade.Models.Unet;
using SelfCascade.Models.Vae;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Checkpoints.SingleFile;

/// <summary>Builds a component's key map from its config: the network on the meta device gives every name and shape.</summary>
public static class ComponentKeyMaps
{
    /// <summary>The networks a layout holds, in file order.</summary>
    public static IReadOnlyList<string> Networks(SingleFileLayout layout) =>
        layout.TextEncoder2Prefix is null ? ["unet", "vae", "text_encoder"] : ["unet", "vae", "text_encoder", "text_encoder_2"];

    /// <summary>
    /// The map and the meta-device network it was built from (zero memory; the caller disposes it, or uses it to
    /// normalise legacy names of a folder's files).
    /// </summary>
    public static (ComponentKeyMap Map, nn.Module Network) Build(string component, ConfigJson config, SingleFileLayout layout)
    {
        switch (component)
        {
            case "unet":
            {
                var c = UNet2DConditionConfig.FromJson(config);
                UNet2DConditionModel net;
                using (ModelConstruction.On(torch.META, ScalarType.Float32)) net = new UNet2DConditionModel(c);
                return (new ComponentKeyMap(component, SingleFileLayout.UnetPrefix, new UnetKeyRule(c), Shapes(net)), net);
            }
            case "vae":
            {
                var c = AutoencoderKLConfig.FromJson(config);
                AutoencoderKL net;
                using (ModelConstruction.On(torch.META, ScalarType.Float32)) net = new AutoencoderKL(c);
                return (new ComponentKeyMap(component, SingleFileLayout.VaePrefix, new VaeKeyRule(c), Shapes(net)), net);
            }
            case "text_encoder":
                return Text(component, config, layout.TextEncoderPrefix, layout.TextEncoderOpenClip, defaultProjection: false);
            case "text_encoder_2" when layout.TextEncoder2Prefix is string p2:
                return Text(component, config, p2, openClip: true, defaultProjection: true);
            default:
                throw new InvalidDataException($"no network '{component}' in an {DiffusersModelFolder.FamilyName(layout.Family)} single file");
        }
    }

    private static (ComponentKeyMap, nn.Module) Text(string component, ConfigJson json, string prefix, bool openClip, bool defaultProjection)
    {
        bool projection = ClipTextConfig.DeclaredWithProjection(json) ?? defaultProjection;
        var config = ClipTextConfig.From(json, withProjection: projection);
        json.ThrowIfInvalid();
        var net = new ClipTextModel(config, torch.META, ScalarType.Float32);
        IOriginalKeyRule rule = openClip ? new OpenClipKeyRule(config.NumHiddenLayers, projection) : new OpenAiClipKeyRule();
        return (new ComponentKeyMap(component, prefix, rule, Shapes(net)), net);
    }

    private static List<(string, long[])> Shapes(nn.Module net) => net.state_dict().Select(kv => (kv.Key, kv.Value.shape)).ToList();

    /// <summary>The original-layout placement of a family (for writing a folder back as a single file).</summary>
    public static SingleFileLayout LayoutOf(ModelFamily family, bool sd2TextIsOpenClip = true) => family switch
    {
        ModelFamily.StableDiffusion1 => new(family, SingleFileLayout.Sd1TextPrefix, false, null),
        ModelFamily.StableDiffusion2 => sd2TextIsOpenClip ? new(family, SingleFileLayout.Sd2TextPrefix, true, null) : new(family, SingleFileLayout.Sd1TextPrefix, false, null),
        ModelFamily.StableDiffusionXL => new(family, SingleFileLayout.XlText1Prefix, false, SingleFileLayout.XlText2Prefix),
        _ => throw new InvalidDataException($"family {family} has no single-file layout"),
    };
}
