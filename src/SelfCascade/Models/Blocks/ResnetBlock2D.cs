using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SelfCascade.Models.Blocks;

/// <summary>
/// diffusers `ResnetBlock2D` with `time_embedding_norm="default"`: GroupNorm, SiLU, 3x3 conv, plus the projected
/// time embedding (when the block has one), GroupNorm, SiLU, dropout, 3x3 conv; a 1x1 `conv_shortcut` when the
/// channel count changes; `(x + h) / output_scale_factor`.
/// </summary>
public sealed class ResnetBlock2D : nn.Module
{
    private readonly GroupNorm norm1;
    private readonly Conv2d conv1;
    private readonly Linear? time_emb_proj;
    private readonly GroupNorm norm2;
    private readonly Dropout dropout;
    private readonly Conv2d conv2;
    private readonly Conv2d? conv_shortcut;
    private readonly double _outputScaleFactor;

    /// <param name="tembChannels">Width of the time embedding, or null for the VAE's blocks (no `time_emb_proj`).</param>
    public ResnetBlock2D(long inChannels, long outChannels, long? tembChannels, long groups, double eps,
        double dropoutP = 0.0, double outputScaleFactor = 1.0) : base(nameof(ResnetBlock2D))
    {
        norm1 = Norms.GroupNorm(groups, inChannels, eps);
        conv1 = nn.Conv2d(inChannels, outChannels, 3, stride: 1, padding: 1);
        if (tembChannels is long t) time_emb_proj = nn.Linear(t, outChannels);
        norm2 = Norms.GroupNorm(groups, outChannels, eps);
        dropout = nn.Dropout(dropoutP);
        conv2 = nn.Conv2d(outChannels, outChannels, 3, stride: 1, padding: 1);
        if (inChannels != outChannels) conv_shortcut = nn.Conv2d(inChannels, outChannels, 1, stride: 1, padding: 0L);
        _outputScaleFactor = outputScaleFactor;
        RegisterComponents();
    }

    public Tensor Forward(Tensor input, Tensor? temb)
    {
        using var scope = torch.NewDisposeScope();
        var h = F.silu(norm1.call(input));
        h = CpuConv2d.Forward(conv1, h);
        if (time_emb_proj is not null && temb is not null)
        {
            var t = time_emb_proj.call(F.silu(temb));
            h = h + t.unsqueeze(-1).unsqueeze(-1);
        }
        h = F.silu(norm2.call(h));
        h = CpuConv2d.Forward(conv2, dropout.call(h));
        var shortcut = conv_shortcut is null ? input : conv_shortcut.call(input);
        var output = shortcut + h;
        if (_outputScaleFactor != 1.0)
        {
            using var s = _outputScaleFactor.ToScalar();
            output = output.div(s);
        }
        return output.MoveToOuterDisposeScope();
    }
}
