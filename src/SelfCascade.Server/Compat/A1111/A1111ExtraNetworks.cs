using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using SelfCascade.Server.Extras;

namespace SelfCascade.Server.Compat.A1111;

/// <summary>
/// A1111's extra networks in a prompt (modules/extra_networks.py parse_prompt): every <c>&lt;TYPE:ARGS&gt;</c> is
/// removed from the prompt, and for TYPE lora (or its alias lyco) ARGS = NAME[:TE[:UNET]] with named te=/unet=
/// overriding (extensions-builtin/Lora: te default 1, unet default te). NAME is a served LoRA name (serve --lora).
/// Other types (hypernet, ...) and dyn= cannot be honoured and are 422s, not silently skipped.
/// Upsamplers: <c>override_settings.selfcascade_upsamplers</c> = a served set name (serve --upsamplers).
/// </summary>
public static partial class A1111ExtraNetworks
{
    /// <summary>The override_settings key that names the served feature-upsampler set of the hires pass (our own key).</summary>
    public const string UpsamplersSetting = "selfcascade_upsamplers";

    [GeneratedRegex(@"<(\w+):([^>]+)>")]
    private static partial Regex ExtraNet();

    /// <summary>The prompt without its extra-network tags, and the LoRAs they name (in order).</summary>
    public static (string Prompt, IReadOnlyList<LoraUse> Loras) Parse(string prompt)
    {
        var loras = new List<LoraUse>();
        var stripped = ExtraNet().Replace(prompt, m =>
        {
            var type = m.Groups[1].Value;
            if (type is not ("lora" or "lyco"))
                throw new A1111RequestException(422, $"extra network <{type}:...> is not supported here; only <lora:NAME:SCALE>");
            var positional = new List<string>();
            var named = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var item in m.Groups[2].Value.Split(':'))
            {
                var parts = item.Split('=', 3);
                if (parts.Length == 2) named[parts[0]] = parts[1];
                else positional.Add(item);
            }
            if (positional.Count == 0 || positional[0].Length == 0) throw new A1111RequestException(422, $"{m.Value}: no LoRA name");
            if (positional.Count > 3 || named.ContainsKey("dyn"))
                throw new A1111RequestException(422, $"{m.Value}: dyn (dimension reduction) is not supported");
            double te = positional.Count > 1 ? Number(positional[1], m.Value) : 1.0;
            if (named.TryGetValue("te", out var t)) te = Number(t, m.Value);
            double unet = positional.Count > 2 ? Number(positional[2], m.Value) : te;
            if (named.TryGetValue("unet", out var u)) unet = Number(u, m.Value);
            loras.Add(new LoraUse(positional[0], unet) { TextEncoderScale = te });
            return "";
        });
        return (stripped, loras);
    }

    /// <summary><c>override_settings.selfcascade_upsamplers</c> (null when absent or empty).</summary>
    public static string? Upsamplers(A1111ProcessingRequest r)
    {
        if (r.OverrideSettings is null || !r.OverrideSettings.TryGetValue(UpsamplersSetting, out var v)) return null;
        if (v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.String) throw new A1111RequestException(422, $"override_settings.{UpsamplersSetting} must be a string (a served upsampler set's name)");
        var name = v.GetString();
        return string.IsNullOrEmpty(name) || name == ServedExtras.NoUpsamplers ? null : name;
    }

    private static double Number(string s, string tag) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d) ? d
            : throw new A1111RequestException(422, $"{tag}: '{s}' is not a number");
}
