using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Models.Clip;

/// <summary>transformers <c>CLIPEncoderLayer</c>: pre-LayerNorm residual attention, then pre-LayerNorm residual MLP.</summary>
internal sealed class ClipEncoderLayer : nn.Module<Tensor, Tensor>
{
    private readonly ClipAttention self_attn;
    private readonly LayerNorm layer_norm1;
    private readonly ClipMlp mlp;
    private readonly LayerNorm layer_norm2;

    public ClipEncoderLayer(ClipTextConfig config, Device? device, ScalarType? dtype) : base("CLIPEncoderLayer")
    {
        self_attn = new ClipAttention(config, device, dtype);
        layer_norm1 = nn.LayerNorm(config.HiddenSize, config.LayerNormEps, device: device, dtype: dtype);
        mlp = new ClipMlp(config, device, dtype);
        layer_norm2 = nn.LayerNorm(config.HiddenSize, config.LayerNormEps, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x + self_attn.call(layer_norm1.call(x));
        h = h + mlp.call(layer_norm2.call(h));
        return h.MoveToOuterDisposeScope();
    }
}
