using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SelfCascade.Models.Blocks;

/// <summary>Construction settings of <see cref="Attention"/> (the arguments of diffusers' `Attention`).</summary>
public sealed record AttentionSpec(long QueryDim, long Heads, long DimHead)
{
    /// <summary>Width of the context for cross-attention; null = self-attention.</summary>
    public long? CrossAttentionDim { get; init; }
    /// <summary>Bias on to_q/to_k/to_v (`bias`): false in transformer blocks, true in the VAE's attention.</summary>
    public bool QkvBias { get; init; }
    public bool OutBias { get; init; } = true;
    public double Dropout { get; init; }
    /// <summary>`upcast_attention`: scores in fp32 for half-precision inputs.</summary>
    public bool UpcastAttention { get; init; }
    /// <summary>`upcast_softmax`: softmax in fp32 for half-precision inputs (the VAE's mid-block attention).</summary>
    public bool UpcastSoftmax { get; init; }
    /// <summary>`norm_num_groups`: a GroupNorm (`group_norm`) over channels before the projections (VAE).</summary>
    public long? NormNumGroups { get; init; }
    public double NormEps { get; init; } = 1e-5;
    /// <summary>`residual_connection`: add the input back (VAE).</summary>
    public bool ResidualConnection { get; init; }
}

/// <summary>
/// diffusers `Attention` run by `AttnProcessor2_0`: to_q/to_k/to_v, multi-head scaled-dot-product attention,
/// `to_out.0` (Linear) and `to_out.1` (Dropout). 4-D inputs (B, C, H, W) are attended as H*W tokens and reshaped
/// back; optional `group_norm` and residual connection as in the VAE's mid block.
/// </summary>
public sealed class Attention : nn.Module
{
    private readonly Linear to_q;
    private readonly Linear to_k;
    private readonly Linear to_v;
    private readonly ModuleList<nn.Module<Tensor, Tensor>> to_out;
    private readonly GroupNorm? group_norm;
    private readonly long _heads;
    private readonly bool _upcast;
    private readonly bool _residual;

    public Attention(AttentionSpec spec) : base(nameof(Attention))
    {
        long inner = spec.Heads * spec.DimHead;
        long contextDim = spec.CrossAttentionDim ?? spec.QueryDim;
        if (spec.NormNumGroups is long g) group_norm = Norms.GroupNorm(g, spec.QueryDim, spec.NormEps);
        to_q = nn.Linear(spec.QueryDim, inner, hasBias: spec.QkvBias);
        to_k = nn.Linear(contextDim, inner, hasBias: spec.QkvBias);
        to_v = nn.Linear(contextDim, inner, hasBias: spec.QkvBias);
        to_out = nn.ModuleList<nn.Module<Tensor, Tensor>>(
            nn.Linear(inner, spec.QueryDim, hasBias: spec.OutBias), nn.Dropout(spec.Dropout));
        _heads = spec.Heads;
        _upcast = spec.UpcastAttention || spec.UpcastSoftmax;
        _residual = spec.ResidualConnection;
        RegisterComponents();
    }

    /// <param name="hidden">(B, N, C) tokens or a (B, C, H, W) feature map.</param>
    /// <param name="context">(B, M, D) cross-attention context, or null for self-attention.</param>
    /// <param name="logitScale">Multiplies the attention logits q·k/sqrt(d) (the "attn-scale" baseline); null = 1.</param>
    public Tensor Forward(Tensor hidden, Tensor? context = null, double? logitScale = null)
    {
        using var scope = torch.NewDisposeScope();
        var residual = hidden;
        long batch = hidden.shape[0];
        bool spatial = hidden.dim() == 4;
        long c = 0, h = 0, w = 0;
        var x = hidden;
        if (spatial)
        {
            (c, h, w) = (hidden.shape[1], hidden.shape[2], hidden.shape[3]);
            x = hidden.view(batch, c, h * w).transpose(1, 2);
        }
        if (group_norm is not null) x = group_norm.call(x.transpose(1, 2)).transpose(1, 2);

        var q = to_q.call(x);
        var kv = context ?? x;
        var k = to_k.call(kv);
        var v = to_v.call(kv);
        long headDim = k.shape[^1] / _heads;
        q = q.view(batch, -1, _heads, headDim).transpose(1, 2);
        k = k.view(batch, -1, _heads, headDim).transpose(1, 2);
        v = v.view(batch, -1, _heads, headDim).transpose(1, 2);
        if (logitScale is double f)
        {
            // SDPA has no scale argument in TorchSharp 0.107: scaling q scales every logit by f.
            using var s = f.ToScalar();
            q = q.mul(s);
        }

        var dtype = q.dtype;
        // diffusers' classic processor computes scores/softmax in fp32 when upcasting; do the whole SDPA in fp32
        // for half-precision inputs (a no-op in fp32).
        bool upcast = _upcast && dtype is ScalarType.Float16 or ScalarType.BFloat16;
        if (upcast) { q = q.to_type(ScalarType.Float32); k = k.to_type(ScalarType.Float32); v = v.to_type(ScalarType.Float32); }
        var o = F.scaled_dot_product_attention(q, k, v);
        if (upcast) o = o.to_type(dtype);
        o = o.transpose(1, 2).reshape(batch, -1, _heads * headDim);
        o = to_out[0].call(o);
        o = to_out[1].call(o);

        if (spatial) o = o.transpose(-1, -2).reshape(batch, c, h, w);
        if (_residual) o = o + residual;
        return o.MoveToOuterDisposeScope();
    }
}
