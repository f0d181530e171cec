using SelfCascade.Models.Unet;
using TorchSharp;
using SelfCascade.Checkpoints.Pickle;
using static TorchSharp.torch;

namespace SelfCascade.Cascade.Upsamplers;

/// <summary>
/// Imports the released SDXL upsampler checkpoint (`upsampler_only.pth`, a torch.save pickle whose `state_dict`
/// holds `unet.feature_upsampler{0..3}.{0,1}.{in_layers,emb_layers,out_layers}.…`) into a <c>full</c> set, without
/// Python, through the allow-list unpickler (<see cref="PickleCheckpoint"/>: nothing in the file runs). Released upsampler k sits after down block k (k = 0..2) and
/// after the mid block (k = 3); the output gates are set to 1, so the set computes exactly what the released one did.
/// </summary>
public static class ReleasedUpsamplerImporter
{
    private const string Prefix = "feature_upsampler";
    /// <summary>The released blocks normalise with `normalization(C)` = GroupNorm32(32, C), whatever the UNet's norm_num_groups.</summary>
    public const int ReleasedNormGroups = 32;

    /// <summary>Reads <paramref name="pthPath"/> and builds the full set for a UNet with <paramref name="unet"/>.</summary>
    /// <param name="stageScale">Recorded in the set's config (the released checkpoint adapts 1024 → 2048: 2).</param>
    public static FeatureUpsamplerSet Import(string pthPath, UNet2DConditionConfig unet, double? stageScale = 2.0)
    {
        if (!File.Exists(pthPath)) throw new UpsamplerCheckpointException($"{pthPath}: file not found");
        PickleCheckpoint ckpt;
        try { ckpt = PickleCheckpoint.Open(pthPath); }
        catch (PickleFormatException e)
        {
            throw new UpsamplerCheckpointException($"{pthPath}: not a readable PyTorch checkpoint ({e.Problem})", e);
        }
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            using (ckpt)
            {
                foreach (var key in ckpt.Entries.Keys)
                {
                    var name = key.StartsWith("unet.", StringComparison.Ordinal) ? key["unet.".Length..] : key;
                    if (name.StartsWith(Prefix, StringComparison.Ordinal)) tensors[name] = ckpt.Read(key);
                }
                if (tensors.Count == 0)
                    throw new UpsamplerCheckpointException($"{pthPath}: no 'unet.{Prefix}*' tensors in its state_dict (keys: {Describe(ckpt.Entries.Keys)})");
            }
            return Build(pthPath, tensors, unet, stageScale);
        }
        catch (PickleFormatException e)
        {
            throw new UpsamplerCheckpointException($"{pthPath}: not a readable PyTorch checkpoint ({e.Problem})", e);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    private static FeatureUpsamplerSet Build(string source, Dictionary<string, Tensor> tensors, UNet2DConditionConfig unet, double? stageScale)
    {
        var indices = tensors.Keys.Select(k => k[Prefix.Length..].Split('.')[0]).Distinct()
            .Select(s => int.TryParse(s, out int i) ? i : -1).OrderBy(i => i).ToList();
        if (indices.Contains(-1) || !indices.SequenceEqual(Enumerable.Range(0, indices.Count)))
            throw new UpsamplerCheckpointException($"{source}: upsampler indices {string.Join(",", indices)} are not 0..n-1");
        var released = InjectionPoint.ReleasedDefault(unet);
        if (indices.Count != released.Count)
            throw new UpsamplerCheckpointException($"{source}: {indices.Count} upsamplers, but the released layout for this UNet has {released.Count} ({string.Join(", ", released)})");
        // Channel widths as stored, checked against the UNet before anything is built.
        var problems = new List<string>();
        for (int k = 0; k < indices.Count; k++)
        {
            var key = $"{Prefix}{k}.0.in_layers.2.weight";
            if (!tensors.TryGetValue(key, out var w)) { problems.Add($"missing {key}"); continue; }
            int expected = released[k].Channels(unet);
            if (w.shape[0] != expected) problems.Add($"{Prefix}{k} ({released[k]}) has {w.shape[0]} channels, this UNet has {expected}");
        }
        if (problems.Count > 0) throw new UpsamplerCheckpointException($"{source} does not fit this UNet: {string.Join("; ", problems)}");

        var set = FeatureUpsamplerSet.Build(FeatureUpsamplerConfig.For(UpsamplerVariant.Full, unet, released, stageScale) with { NormGroups = ReleasedNormGroups });
        try
        {
            var state = set.state_dict();
            var missing = new List<string>();
            var mismatched = new List<string>();
            using (torch.no_grad())
            {
                foreach (var (name, dest) in state)
                {
                    if (name.EndsWith(".gate", StringComparison.Ordinal)) { dest.fill_(1.0); continue; }
                    if (!tensors.TryGetValue(name, out var src)) { missing.Add(name); continue; }
                    if (!src.shape.SequenceEqual(dest.shape)) { mismatched.Add($"{name}: [{string.Join(",", src.shape)}] vs [{string.Join(",", dest.shape)}]"); continue; }
                    dest.copy_(src);
                }
            }
            var unexpected = tensors.Keys.Where(k => !state.ContainsKey(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
            if (missing.Count + mismatched.Count + unexpected.Count > 0)
                throw new UpsamplerCheckpointException($"{source}: released upsampler weights do not map onto the full variant: " +
                    string.Join("; ", new[] { ("missing", missing), ("mis-shaped", mismatched), ("unexpected", unexpected) }
                        .Where(x => x.Item2.Count > 0).Select(x => $"{x.Item1}: {string.Join(", ", x.Item2)}")));
            return set;
        }
        catch
        {
            set.Dispose();
            throw;
        }
    }

    private static string Describe(IEnumerable<string> keys)
    {
        var all = keys.ToList();
        var list = all.Take(8).ToList();
        return list.Count == 0 ? "none" : string.Join(", ", list) + (all.Count > list.Count ? ", …" : "");
    }
}
