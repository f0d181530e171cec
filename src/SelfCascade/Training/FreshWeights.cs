using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Training;

/// <summary>
/// Initial weights for a network trained from scratch, as PyTorch's layer defaults: TorchSharp 0.107 leaves a
/// GroupNorm's affine weight uninitialised when built through <c>nn.GroupNorm</c> (seen: NaN in a resnet's norm2),
/// which never mattered for networks whose weights are loaded. Norms get weight 1 and bias 0; convolutions and
/// layer norms are reset by their own <c>reset_parameters</c> (Kaiming-uniform, drawn from the global generator).
/// </summary>
public static class FreshWeights
{
    public static void Initialize(nn.Module module)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        foreach (var (_, m) in module.named_modules())
        {
            switch (m)
            {
                case GroupNorm g:
                    foreach (var (name, p) in g.named_parameters())
                        if (name == "weight") p.fill_(1.0f); else p.zero_();
                    break;
                case LayerNorm l: l.reset_parameters(); break;
                case Convolution c: c.reset_parameters(); break;
            }
        }
        var bad = module.named_parameters().Where(p => !p.parameter.isfinite().all().item<bool>()).Select(p => p.name).ToList();
        if (bad.Count > 0) throw new InvalidOperationException($"freshly initialised weights are not finite: {string.Join(", ", bad)}");
    }
}
