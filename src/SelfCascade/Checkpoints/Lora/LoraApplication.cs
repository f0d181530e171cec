using System.Runtime.CompilerServices;
using SelfCascade.Pipelines;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Checkpoints.Lora;

/// <summary>
/// A LoRA merged into a model's weights. Disposing it restores every touched weight bit for bit from the copy taken
/// before the merge (so a server can switch LoRAs). Several applications stack; they must be disposed in reverse
/// order (the last one applied first), which is checked.
/// </summary>
public sealed class LoraApplication : IDisposable
{
    private static readonly ConditionalWeakTable<nn.Module, List<LoraApplication>> Active = new();

    private readonly List<(Tensor Weight, Tensor Backup)> _saved;
    private readonly nn.Module _anchor;
    private bool _disposed;

    public LoraMatchReport Report { get; }
    public double Scale { get; }

    private LoraApplication(nn.Module anchor, List<(Tensor, Tensor)> saved, LoraMatchReport report, double scale)
    {
        _anchor = anchor; _saved = saved; Report = report; Scale = scale;
    }

    /// <summary>The components a pipeline exposes to LoRA: unet, text_encoder and (SDXL) text_encoder_2.</summary>
    public static IReadOnlyDictionary<string, nn.Module> Components(StableDiffusionPipeline pipe)
    {
        var d = new Dictionary<string, nn.Module>(StringComparer.Ordinal) { ["unet"] = pipe.Unet };
        var tes = pipe.Prompts.TextEncoders;
        d["text_encoder"] = tes[0];
        if (tes.Count > 1) d["text_encoder_2"] = tes[1];
        return d;
    }

    /// <summary>Merges <paramref name="set"/> at <paramref name="scale"/> into a pipeline's UNet and text encoder(s).</summary>
    public static LoraApplication Apply(StableDiffusionPipeline pipe, LoraSet set, double scale = 1.0, bool lenient = false) =>
        Apply(Components(pipe), set, scale, lenient);

    /// <summary>
    /// Merges every matched layer: <c>W ← W + scale · alpha/rank · up·down</c>, computed in fp32 and stored in W's
    /// dtype and device. Unknown or unmatched keys throw <see cref="LoraException"/> listing all of them (before any
    /// weight changes) unless <paramref name="lenient"/>.
    /// </summary>
    public static LoraApplication Apply(IReadOnlyDictionary<string, nn.Module> components, LoraSet set, double scale = 1.0, bool lenient = false) =>
        Apply(components, set, scale, scale, lenient);

    /// <summary>
    /// As <see cref="Apply(StableDiffusionPipeline, LoraSet, double, bool)"/> with one scale for the UNet and another for
    /// the text encoder(s) (ComfyUI's LoraLoader strength_model / strength_clip). Every key is matched against the
    /// whole pipeline either way; layers of a component whose scale is 0 are left untouched.
    /// </summary>
    public static LoraApplication Apply(StableDiffusionPipeline pipe, LoraSet set, double unetScale, double textEncoderScale, bool lenient) =>
        Apply(Components(pipe), set, unetScale, textEncoderScale, lenient);

    private static LoraApplication Apply(IReadOnlyDictionary<string, nn.Module> components, LoraSet set, double unetScale, double textEncoderScale, bool lenient)
    {
        foreach (var s in new[] { unetScale, textEncoderScale })
            if (!double.IsFinite(s)) throw new ArgumentException($"LoRA scale {s} is not finite");
        double scale = unetScale;
        var states = components.ToDictionary(kv => kv.Key, kv => kv.Value.state_dict(), StringComparer.Ordinal);
        var shapes = states.ToDictionary(kv => kv.Key,
            kv => (IReadOnlyDictionary<string, long[]>)kv.Value.ToDictionary(p => p.Key, p => p.Value.shape, StringComparer.Ordinal),
            StringComparer.Ordinal);
        var report = set.Match(shapes);
        if (!report.Ok && !lenient)
            throw new LoraException($"{set.Path}: {report.Unmatched.Count} LoRA key(s) do not fit the model (use --lora-lenient to skip them): {string.Join("; ", report.Unmatched)}");
        var anchor = components.Values.First();
        var saved = new List<(Tensor, Tensor)>();
        try
        {
            using var _ = torch.no_grad();
            foreach (var m in report.Matched)
            {
                double layerScale = m.Layer.Component == "unet" ? unetScale : textEncoderScale;
                if (layerScale == 0) continue;
                var w = states[m.Layer.Component][m.Weight];
                saved.Add((w, w.detach().clone()));
                using var scope = NewDisposeScope();
                var l = m.Layer;
                var up = l.Up.to(w.device).reshape(l.Up.shape[0], l.Rank);
                var down = l.Down.to(w.device).reshape(l.Rank, -1);
                var delta = up.matmul(down).reshape(w.shape).mul(layerScale * l.Multiplier);
                var merged = w.to(ScalarType.Float32).add(delta).to(w.dtype);
                w.copy_(merged);
            }
        }
        catch
        {
            using var _ = torch.no_grad();
            foreach (var (w, b) in saved) { w.copy_(b); b.Dispose(); }
            throw;
        }
        var app = new LoraApplication(anchor, saved, report, scale);
        Active.GetOrCreateValue(anchor).Add(app);
        return app;
    }

    /// <summary>Restores the weights exactly as they were before this application.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        if (Active.TryGetValue(_anchor, out var stack) && stack.Count > 0 && !ReferenceEquals(stack[^1], this))
            throw new InvalidOperationException("LoRA applications must be disposed in reverse order (the last applied first)");
        _disposed = true;
        using (torch.no_grad())
            for (int i = _saved.Count - 1; i >= 0; i--)
            {
                var (w, b) = _saved[i];
                w.copy_(b);
                b.Dispose();
            }
        stack?.Remove(this);
    }
}

/// <summary>The C# surface: <c>using var lora = pipe.ApplyLora(LoraSet.Load(path), 0.8);</c>.</summary>
public static class LoraPipelineExtensions
{
    public static LoraApplication ApplyLora(this StableDiffusionPipeline pipe, LoraSet set, double scale = 1.0, bool lenient = false) =>
        LoraApplication.Apply(pipe, set, scale, lenient);
}
