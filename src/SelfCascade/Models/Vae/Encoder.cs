using SelfCascade.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SelfCascade.Models.Vae;

/// <summary>
/// diffusers VAE `Encoder` (double_z): `conv_in`, `down_blocks` (downsampling with right/bottom padding),
/// `mid_block`, GroupNorm `conv_norm_out`, SiLU, `conv_out` to 2 x latent_channels (mean and log-variance).
/// All norms use eps 1e-6.
/// </summary>
public sealed class Encoder : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv_in;
    private readonly ModuleList<DownEncoderBlock2D> down_blocks;
    private readonly UNetMidBlock2D mid_block;
    private readonly GroupNorm conv_norm_out;
    private readonly Conv2d conv_out;

    public Encoder(AutoencoderKLConfig c) : base(nameof(Encoder))
    {
        const double eps = 1e-6;
        var ch = c.BlockOutChannels;
        conv_in = nn.Conv2d(c.InChannels, ch[0], 3, stride: 1, padding: 1);
        var blocks = new List<DownEncoderBlock2D>();
        long output = ch[0];
        for (int i = 0; i < ch.Length; i++)
        {
            long input = output;
            output = ch[i];
            blocks.Add(new DownEncoderBlock2D(c.LayersPerBlock, input, output, i < ch.Length - 1, c.NormNumGroups, eps, downsamplePadding: 0));
        }
        down_blocks = nn.ModuleList(blocks.ToArray());
        mid_block = new UNetMidBlock2D(ch[^1], c.NormNumGroups, eps, c.MidBlockAddAttention);
        conv_norm_out = Norms.GroupNorm(c.NormNumGroups, ch[^1], eps);
        conv_out = nn.Conv2d(ch[^1], 2L * c.LatentChannels, 3, stride: 1, padding: 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var h = CpuConv2d.Forward(conv_in, input);
        foreach (var b in down_blocks) h = b.call(h);
        h = mid_block.call(h);
        h = CpuConv2d.Forward(conv_out, F.silu(conv_norm_out.call(h)));
        return h.MoveToOuterDisposeScope();
    }
}
