using SelfCascade.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SelfCascade.Models.Vae;

/// <summary>
/// diffusers VAE `Decoder`: `conv_in`, `mid_block`, `up_blocks` (layers_per_block + 1 resnets each, 2x nearest
/// upsampling except in the last), GroupNorm `conv_norm_out`, SiLU, `conv_out`. All norms use eps 1e-6.
/// </summary>
public sealed class Decoder : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv_in;
    private readonly UNetMidBlock2D mid_block;
    private readonly ModuleList<UpDecoderBlock2D> up_blocks;
    private readonly GroupNorm conv_norm_out;
    private readonly Conv2d conv_out;

    public Decoder(AutoencoderKLConfig c) : base(nameof(Decoder))
    {
        const double eps = 1e-6;
        var ch = c.BlockOutChannels;
        conv_in = nn.Conv2d(c.LatentChannels, ch[^1], 3, stride: 1, padding: 1);
        mid_block = new UNetMidBlock2D(ch[^1], c.NormNumGroups, eps, c.MidBlockAddAttention);
        var blocks = new List<UpDecoderBlock2D>();
        long output = ch[^1];
        for (int i = 0; i < ch.Length; i++)
        {
            long prev = output;
            output = ch[ch.Length - 1 - i];
            blocks.Add(new UpDecoderBlock2D(c.LayersPerBlock + 1, prev, output, i < ch.Length - 1, c.NormNumGroups, eps));
        }
        up_blocks = nn.ModuleList(blocks.ToArray());
        conv_norm_out = Norms.GroupNorm(c.NormNumGroups, ch[0], eps);
        conv_out = nn.Conv2d(ch[0], c.OutChannels, 3, stride: 1, padding: 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var h = CpuConv2d.Forward(conv_in, input);
        h = mid_block.call(h);
        foreach (var b in up_blocks)
        {
            var next = b.call(h);
            h.Dispose();
            h = next;
        }
        h = CpuConv2d.Forward(conv_out, F.silu(conv_norm_out.call(h)));
        return h.MoveToOuterDisposeScope();
    }
}
