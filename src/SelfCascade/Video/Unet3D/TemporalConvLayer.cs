using SelfCascade.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Video.Unet3D;

/// <summary>
/// diffusers `TemporalConvLayer` (ModelScope's temporal convolution): four (GroupNorm, SiLU, [Dropout], Conv3d
/// (3,1,1)) stages over the frame axis of each pixel, added to the input. `conv1` = [norm, SiLU, conv] (`conv1.0`,
/// `conv1.2`), `conv2..4` = [norm, SiLU, Dropout, conv] (`convK.0`, `convK.3`). The GroupNorms see the whole
/// (C, F, H, W) volume, so every frame's statistics are shared: only a zeroed `conv4` makes the layer the identity.
/// </summary>
public sealed class TemporalConvLayer : nn.Module
{
    private readonly ModuleList<nn.Module<Tensor, Tensor>> conv1;
    private readonly ModuleList<nn.Module<Tensor, Tensor>> conv2;
    private readonly ModuleList<nn.Module<Tensor, Tensor>> conv3;
    private readonly ModuleList<nn.Module<Tensor, Tensor>> conv4;

    public TemporalConvLayer(long inDim, long outDim, long groups, double dropout = 0.1) : base(nameof(TemporalConvLayer))
    {
        conv1 = nn.ModuleList<nn.Module<Tensor, Tensor>>(Norms.GroupNorm(groups, inDim), nn.SiLU(), FrameConv(inDim, outDim));
        conv2 = Stage(outDim, inDim, groups, dropout);
        conv3 = Stage(outDim, inDim, groups, dropout);
        conv4 = Stage(outDim, inDim, groups, dropout);
        RegisterComponents();
    }

    private static Conv3d FrameConv(long inDim, long outDim) =>
        nn.Conv3d(inDim, outDim, kernel_size: (3, 1, 1), stride: (1, 1, 1), padding: (1, 0, 0));

    private static ModuleList<nn.Module<Tensor, Tensor>> Stage(long inDim, long outDim, long groups, double dropout) =>
        nn.ModuleList<nn.Module<Tensor, Tensor>>(Norms.GroupNorm(groups, inDim), nn.SiLU(), nn.Dropout(dropout), FrameConv(inDim, outDim));

    /// <param name="hidden">(B * F, C, H, W), frames of a video consecutive (index b * F + f).</param>
    /// <param name="numFrames">F.</param>
    public Tensor Forward(Tensor hidden, long numFrames)
    {
        using var scope = torch.NewDisposeScope();
        var x = VideoLayout.ToVideo(hidden, numFrames);
        var identity = x;
        foreach (var stage in new[] { conv1, conv2, conv3, conv4 })
            foreach (var m in stage) x = m.call(x);
        x = identity + x;
        return VideoLayout.ToFrames(x).MoveToOuterDisposeScope();
    }
}

/// <summary>Between the UNets' folded layout (B * F, C, H, W) and the video layout (B, C, F, H, W).</summary>
public static class VideoLayout
{
    /// <summary>(B * F, C, H, W) -> (B, C, F, H, W).</summary>
    public static Tensor ToVideo(Tensor frames, long numFrames)
    {
        long bf = frames.shape[0];
        if (numFrames < 1 || bf % numFrames != 0)
            throw new ArgumentException($"{bf} folded frames are not a whole number of {numFrames}-frame videos");
        return frames.reshape(bf / numFrames, numFrames, frames.shape[1], frames.shape[2], frames.shape[3]).permute(0, 2, 1, 3, 4);
    }

    /// <summary>(B, C, F, H, W) -> (B * F, C, H, W).</summary>
    public static Tensor ToFrames(Tensor video) =>
        video.permute(0, 2, 1, 3, 4).reshape(video.shape[0] * video.shape[2], video.shape[1], video.shape[3], video.shape[4]);
}
