using SelfCascade.Models.Unet;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Cascade.Upsamplers;

/// <summary>
/// Runs a <see cref="FeatureUpsamplerSet"/> inside a UNet forward (released code, docs/ARCHITECTURE.md §7): when down block 0
/// finishes, the frozen encoder (<see cref="UNet2DConditionModel.ForwardEncoder"/>) runs once on the clean
/// low-res latent with the same `emb` and text states, without gradient; its per-block outputs are cached for the
/// rest of that forward; at each of the set's points the hook returns hidden + φ(h_lr, emb) resized to the hidden
/// state's size. The cache is released after the mid block (and on the next forward or Dispose at the latest).
/// The low-res latent is used as given (clean, scaled latent space): no scheduler scale_model_input, as released.
/// </summary>
public sealed class FeatureUpsamplerHook : IUNetFeatureHook, IDisposable
{
    private readonly FeatureUpsamplerSet _set;
    private readonly UNet2DConditionModel _unet;
    private readonly Tensor _lowRes;
    private readonly Tensor _states;
    private readonly HashSet<InjectionPoint> _enabled;
    private UNetEncoderFeatures? _features;
    private Tensor? _condition;
    private bool _disposed;

    internal FeatureUpsamplerHook(FeatureUpsamplerSet set, UNet2DConditionModel unet, Tensor lowResLatent, Tensor encoderHiddenStates,
        IEnumerable<InjectionPoint>? enabledPoints)
    {
        set.EnsureCompatible(unet.Config);
        _set = set;
        _unet = unet;
        _enabled = new HashSet<InjectionPoint>(enabledPoints ?? set.Points);
        foreach (var p in _enabled)
            if (!set.Has(p)) throw new ArgumentException($"point {p} is not in the set ({string.Join(", ", set.Points)})", nameof(enabledPoints));
        if (lowResLatent.dim() != 4 || lowResLatent.shape[1] != unet.Config.InChannels)
            throw new ArgumentException($"low-res latent must be (B, {unet.Config.InChannels}, h, w); got [{string.Join(",", lowResLatent.shape)}]", nameof(lowResLatent));
        using (var scope = torch.NewDisposeScope())
        {
            _lowRes = lowResLatent.detach().to(unet.Device).to_type(unet.DType).DetachFromDisposeScope();
            _states = encoderHiddenStates.detach().alias().DetachFromDisposeScope();
        }
        Options = new UNetForwardOptions { FeatureHook = this };
    }

    /// <summary>Pass to <see cref="UNet2DConditionModel.Forward"/> / ForwardWithEmbedding.</summary>
    public UNetForwardOptions Options { get; }

    /// <summary>How many low-res encoder passes ran (one per UNet forward).</summary>
    public int EncoderPasses { get; private set; }

    public Tensor? OnBlockOutput(UNetBlockKind kind, int index, Tensor hidden, Tensor emb)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (kind == UNetBlockKind.Up) return null;
        if (kind == UNetBlockKind.Down && index == 0) Prepare(hidden, emb);
        if (_features is null || _condition is null)
            throw new InvalidOperationException("feature hook: the low-res features are missing (down block 0 was not seen in this forward)");
        try
        {
            var point = new InjectionPoint(kind, index);
            if (!_enabled.Contains(point)) return null;
            var lr = kind == UNetBlockKind.Mid ? _features.Mid : _features.Down[index];
            var phi = _set.Upsample(point, lr, _condition, hidden.shape[2], hidden.shape[3]);
            return hidden + phi;
        }
        finally
        {
            if (kind == UNetBlockKind.Mid) ReleaseFeatures();
        }
    }

    private void Prepare(Tensor hidden, Tensor emb)
    {
        ReleaseFeatures();
        if (_lowRes.shape[0] != hidden.shape[0])
            throw new InvalidOperationException($"low-res latent batch {_lowRes.shape[0]} differs from the UNet batch {hidden.shape[0]} (repeat it for the CFG halves)");
        using var scope = torch.NewDisposeScope();
        using (torch.no_grad())
        {
            var e = emb.detach();
            _features = _unet.ForwardEncoder(_lowRes, e, _states);
            foreach (var t in _features.Down) t.DetachFromDisposeScope();
            _features.Mid.DetachFromDisposeScope();
        }
        // The condition carries gradients to the lite variant's time_proj, so it is computed outside no_grad.
        _condition = _set.TimeCondition(emb.detach()).DetachFromDisposeScope();
        EncoderPasses++;
    }

    private void ReleaseFeatures()
    {
        _features?.Dispose();
        _features = null;
        _condition?.Dispose();
        _condition = null;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        ReleaseFeatures();
        _lowRes.Dispose();
        _states.Dispose();
    }
}
