using SelfCascade.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Models.Vae;

/// <summary>
/// diffusers `UNetMidBlock2D` as the VAE uses it: `resnets.0`, then `attentions.0` (single-head self-attention
/// over all pixels with `group_norm`, residual connection, `upcast_softmax`; absent when
/// `mid_block_add_attention` is false) and `resnets.1`.
/// </summary>
public sealed class UNetMidBlock2D : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Attention> attentions;

    public UNetMidBlock2D(long channels, long groups, double eps, bool addAttention) : base(nameof(UNetMidBlock2D))
    {
        resnets = nn.ModuleList(new ResnetBlock2D(channels, channels, null, groups, eps),
            new ResnetBlock2D(channels, channels, null, groups, eps));
        // attention_head_dim = channels: one head as wide as the block.
        attentions = addAttention
            ? nn.ModuleList(new Attention(new AttentionSpec(channels, 1, channels)
            {
                QkvBias = true, NormNumGroups = groups, NormEps = eps, ResidualConnection = true, UpcastSoftmax = true,
            }))
            : nn.ModuleList<Attention>();
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var h = resnets[0].Forward(input, null);
        if (attentions.Count > 0) h = attentions[0].Forward(h);
        h = resnets[1].Forward(h, null);
        return h.MoveToOuterDisposeScope();
    }
}
