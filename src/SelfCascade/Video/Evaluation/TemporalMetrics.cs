using SelfCascade.Evaluation;
using SelfCascade.Imaging;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Video.Evaluation;

/// <summary>
/// Temporal consistency of a clip from its frames alone, pixel values in [0, 1] (byte / 255), every channel counted:
/// the mean absolute difference of consecutive frames (how much changes per frame), and how far a clip's frame
/// differences are from a reference clip's (a higher-resolution video against its base video, upsampled): a clip
/// that keeps the base video's motion scores 0 whatever its extra detail, flicker and lost motion both score above 0.
/// </summary>
public static class TemporalMetrics
{
    /// <summary>Frames as an (F, 3, H, W) float64 tensor in [0, 1].</summary>
    public static Tensor ToUnitClip(IReadOnlyList<RgbImage> frames)
    {
        Require(frames, nameof(frames));
        var (w, h) = (frames[0].Width, frames[0].Height);
        if (frames.Any(f => f.Width != w || f.Height != h)) throw new ArgumentException("the frames of a clip must all have one size");
        using var scope = NewDisposeScope();
        return cat(frames.Select(ImageTensors.ToUnit).ToArray(), 0).MoveToOuterDisposeScope();
    }

    /// <summary><c>mean over t, pixels, channels of |x[t+1] - x[t]|</c>; 0 for a static clip.</summary>
    public static double MeanFrameDifference(IReadOnlyList<RgbImage> frames)
    {
        using var scope = NewDisposeScope();
        var x = ToUnitClip(frames);
        return Differences(x).abs().mean().item<double>();
    }

    /// <summary>
    /// <c>mean |(x[t+1] - x[t]) - (r[t+1] - r[t])|</c> with the reference clip <paramref name="reference"/> resized to the
    /// clip's size frame by frame (bilinear, align_corners=false; box average when shrinking by whole factors).
    /// </summary>
    public static double FrameDifferenceError(IReadOnlyList<RgbImage> frames, IReadOnlyList<RgbImage> reference)
    {
        if (frames.Count != reference.Count)
            throw new ArgumentException($"the clip has {frames.Count} frames, the reference {reference.Count}");
        using var scope = NewDisposeScope();
        var x = ToUnitClip(frames);
        var r = Resize(ToUnitClip(reference), x.shape[2], x.shape[3]);
        return (Differences(x) - Differences(r)).abs().mean().item<double>();
    }

    /// <summary>Upsampling: bilinear, align_corners=false, in float64; shrinking: <see cref="ImageTensors.ResizeAntialiased"/>.</summary>
    private static Tensor Resize(Tensor clip, long height, long width)
    {
        if (clip.shape[2] == height && clip.shape[3] == width) return clip;
        if (clip.shape[2] <= height && clip.shape[3] <= width)
            return nn.functional.interpolate(clip, [height, width], mode: InterpolationMode.Bilinear, align_corners: false);
        return ImageTensors.ResizeAntialiased(clip, (int)height, (int)width);
    }

    private static Tensor Differences(Tensor clip) => clip[1..] - clip[..^1];

    private static void Require(IReadOnlyList<RgbImage> frames, string name)
    {
        if (frames.Count < 2) throw new ArgumentException($"a temporal metric needs at least 2 frames (got {frames.Count})", name);
    }
}
