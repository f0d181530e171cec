using static TorchSharp.torch;

namespace SelfCascade.Video;

/// <summary>Frame counts and the (B, C, F, h, w) &lt;-&gt; (B*F, C, h, w) folding every video network uses.</summary>
public static class VideoFrames
{
    /// <summary>Throws one clear error unless 1 ≤ frames ≤ max (max null: no upper limit).</summary>
    public static void Validate(int frames, int? max)
    {
        if (frames < 1) throw new ArgumentException($"frames must be at least 1 (got {frames})");
        if (max is int m && frames > m)
            throw new ArgumentException($"frames must be at most {m}, the motion model's maximum sequence length (got {frames})");
    }

    /// <summary>(B, C, F, h, w) -> (B*F, C, h, w), frame f of video b at b*F + f (diffusers' layout inside the UNets).</summary>
    public static Tensor Fold(Tensor video)
    {
        Check(video);
        long b = video.shape[0], c = video.shape[1], f = video.shape[2];
        return video.permute(0, 2, 1, 3, 4).reshape(b * f, c, video.shape[3], video.shape[4]);
    }

    /// <summary>(B*F, C, h, w) -> (B, C, F, h, w).</summary>
    public static Tensor Unfold(Tensor frames, long numFrames)
    {
        if (frames.dim() != 4 || numFrames < 1 || frames.shape[0] % numFrames != 0)
            throw new ArgumentException($"[{string.Join(",", frames.shape)}] is not a batch of {numFrames}-frame videos");
        long b = frames.shape[0] / numFrames;
        return frames.reshape(b, numFrames, frames.shape[1], frames.shape[2], frames.shape[3]).permute(0, 2, 1, 3, 4);
    }

    internal static void Check(Tensor video)
    {
        if (video.dim() != 5)
            throw new ArgumentException($"a video tensor is (B, C, F, h, w); got [{string.Join(",", video.shape)}]");
    }
}
