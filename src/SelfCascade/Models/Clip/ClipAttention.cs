using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Models.Clip;

/// <summary>
/// transformers <c>CLIPAttention</c> as the text model runs it: multi-head self-attention with a causal mask and
/// scale head_dim^-0.5 (SDPA's default), projections <c>q_proj</c>, <c>k_proj</c>, <c>v_proj</c>, <c>out_proj</c>.
/// </summary>
internal sealed class ClipAttention : nn.Module<Tensor, Tensor>
{
    private readonly Linear k_proj;
    private readonly Linear v_proj;
    private readonly Linear q_proj;
    private readonly Linear out_proj;
    private readonly int _heads;
    private readonly int _headDim;

    public ClipAttention(ClipTextConfig config, Device? device, ScalarType? dtype) : base("CLIPAttention")
    {
        int e = config.HiddenSize;
        _heads = config.NumAttentionHeads;
        _headDim = config.HeadDim;
        k_proj = nn.Linear(e, e, device: device, dtype: dtype);
        v_proj = nn.Linear(e, e, device: device, dtype: dtype);
        q_proj = nn.Linear(e, e, device: device, dtype: dtype);
        out_proj = nn.Linear(e, e, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <param name="x">(batch, seq, hidden).</param>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], s = x.shape[1];
        var q = q_proj.call(x).view(b, s, _heads, _headDim).transpose(1, 2);
        var k = k_proj.call(x).view(b, s, _heads, _headDim).transpose(1, 2);
        var v = v_proj.call(x).view(b, s, _heads, _headDim).transpose(1, 2);
        // CLIP's text transformer is causal (transformers builds a causal mask; SDPA's is_causal is the same mask).
        var o = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true);
        o = o.transpose(1, 2).reshape(b, s, _heads * _headDim);
        return out_proj.call(o).MoveToOuterDisposeScope();
    }
}
