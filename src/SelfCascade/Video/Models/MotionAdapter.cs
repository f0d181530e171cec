using SelfCascade.IO;
using SelfCascade.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Video.Models;

/// <summary>
/// diffusers `MotionAdapter` (AnimateDiff): the motion modules for every block of an SD 1.x/2.x UNet, with diffusers'
/// state-dict names (`down_blocks.{i}.motion_modules.{j}.…`, `mid_block.motion_modules.{j}.…`,
/// `up_blocks.{i}.motion_modules.{j}.…`). It holds weights only; <see cref="UNetMotionModel"/> runs them inside
/// the image UNet.
/// </summary>
public sealed class MotionAdapter : nn.Module
{
    private readonly ModuleList<MotionModules> down_blocks;
    private readonly MotionModules? mid_block;
    private readonly ModuleList<MotionModules> up_blocks;

    public MotionAdapterConfig Config { get; }

    /// <summary>The GroupNorm groups the motion modules run with.</summary>
    public int NormGroups { get; }

    /// <param name="normGroups">
    /// GroupNorm groups of the temporal transformers. diffusers' UNetMotionModel builds them with the UNet's
    /// norm_num_groups, not the adapter's motion_norm_num_groups (the weights have the same shapes either way), so
    /// the motion UNet passes the image UNet's value; null = the adapter's own.
    /// </param>
    public MotionAdapter(MotionAdapterConfig config, int? normGroups = null) : base(nameof(MotionAdapter))
    {
        Config = config;
        NormGroups = normGroups ?? config.MotionNormNumGroups;
        var ch = config.BlockOutChannels;
        foreach (var c in ch)
            if (c % NormGroups != 0) throw new MotionAdapterLayoutException($"motion adapter: block_out_channels entry {c} is not divisible by {NormGroups} norm groups");
        long heads = config.MotionNumAttentionHeads, max = config.MotionMaxSeqLength;
        down_blocks = nn.ModuleList(ch.Select(c => new MotionModules(c, config.MotionLayersPerBlock, heads, NormGroups, max)).ToArray());
        if (config.UseMotionMidBlock)
            mid_block = new MotionModules(ch[^1], config.MotionMidBlockLayersPerBlock, heads, NormGroups, max);
        up_blocks = nn.ModuleList(ch.Reverse().Select(c => new MotionModules(c, config.MotionLayersPerBlock + 1, heads, NormGroups, max)).ToArray());
        RegisterComponents();
    }

    /// <summary>Most frames one forward can take: the length of the frame-position table.</summary>
    public int MaxFrames => Config.MotionMaxSeqLength;

    public MotionModules Down(int block) => down_blocks[block];
    public MotionModules? Mid => mid_block;
    public MotionModules Up(int block) => up_blocks[block];
    public int NumBlocks => down_blocks.Count;

    /// <summary>Every motion module, in state-dict order (down, mid, up).</summary>
    public IEnumerable<TransformerTemporalModel> AllModules()
    {
        foreach (var b in down_blocks) for (int i = 0; i < b.Count; i++) yield return b[i];
        if (mid_block is not null) for (int i = 0; i < mid_block.Count; i++) yield return mid_block[i];
        foreach (var b in up_blocks) for (int i = 0; i < b.Count; i++) yield return b[i];
    }

    /// <summary>
    /// Loads a diffusers motion adapter folder (`config.json` + `diffusion_pytorch_model[.variant].safetensors`).
    /// Files with or without the fixed `pos_embed.pe` tables load; anything else that does not fit — another layout
    /// such as the original AnimateDiff `.ckpt` names, missing or extra modules, wrong shapes — is one
    /// <see cref="MotionAdapterLayoutException"/> naming every problem.
    /// </summary>
    public static MotionAdapter FromPretrained(string dir, Device? device = null, ScalarType? dtype = null, string? variant = null, int? normGroups = null)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{dir}: motion adapter folder not found");
        var configPath = Path.Combine(dir, "config.json");
        if (!File.Exists(configPath))
            throw new MotionAdapterLayoutException($"{dir}: no config.json; a motion adapter folder in diffusers' layout (MotionAdapter.save_pretrained) is expected");
        MotionAdapterConfig config;
        try { config = MotionAdapterConfig.Load(configPath); }
        catch (ConfigException e) { throw new MotionAdapterLayoutException($"{configPath}: unsupported motion adapter config: {e.Message}"); }
        var files = WeightLoader.ResolveWeightFiles(dir, variant);
        MotionAdapter adapter;
        using (ModelConstruction.On(device ?? torch.CPU, dtype ?? ScalarType.Float32)) adapter = new MotionAdapter(config, normGroups);
        try
        {
            var report = WeightLoader.Check(adapter, files);
            // The sinusoidal tables are fixed (and the same computed here); Hub adapters may leave them out.
            var missing = report.Missing.Where(k => !k.EndsWith(".pos_embed.pe", StringComparison.Ordinal)).ToList();
            if (missing.Count > 0 || report.Unexpected.Count > 0 || report.Mismatched.Count > 0)
                throw new MotionAdapterLayoutException(Describe(dir, report, missing));
            WeightLoader.Load(adapter, files, strict: false);
        }
        catch { adapter.Dispose(); throw; }
        adapter.eval();
        return adapter;
    }

    private static string Describe(string dir, WeightCheckReport report, List<string> missing)
    {
        const int shown = 12;
        var lines = new List<string>
        {
            $"{dir}: the weights are not a diffusers MotionAdapter for this config: {missing.Count} missing, " +
            $"{report.Unexpected.Count} unexpected, {report.Mismatched.Count} mis-shaped",
        };
        if (report.Unexpected.Any(k => k.Contains("temporal_transformer", StringComparison.Ordinal) || k.Contains(".attention_blocks.", StringComparison.Ordinal)))
            lines.Add("  (the names are the original AnimateDiff checkpoint layout; convert it with diffusers' " +
                      "scripts/convert_animatediff_motion_module_to_diffusers.py first)");
        lines.AddRange(missing.Take(shown).Select(k => "  missing: " + k));
        if (missing.Count > shown) lines.Add($"  … {missing.Count - shown} more missing");
        lines.AddRange(report.Unexpected.Take(shown).Select(k => "  unexpected: " + k));
        if (report.Unexpected.Count > shown) lines.Add($"  … {report.Unexpected.Count - shown} more unexpected");
        lines.AddRange(report.Mismatched.Take(shown).Select(m => "  wrong shape: " + m));
        if (report.Mismatched.Count > shown) lines.Add($"  … {report.Mismatched.Count - shown} more mis-shaped");
        return string.Join("\n", lines);
    }
}
