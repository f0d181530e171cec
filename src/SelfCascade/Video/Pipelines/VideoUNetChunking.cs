using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Video.Pipelines;

/// <summary>
/// A video UNet call split over the batch of videos (e.g. the two CFG halves one after the other): the temporal
/// layers mix frames of one video only, so the result is the unsplit one, at the peak activation memory of
/// <c>videosPerCall</c> videos. Frames are never split (the motion modules attend across all of them). Per-video state
/// in the options (the upsamplers' low-res videos) is sliced to match (<see cref="VideoUNetForwardOptions.ForVideos"/>).
/// </summary>
public static class VideoUNetChunking
{
    /// <param name="videosPerCall">Videos per call; null or ≥ batch = a single call.</param>
    public static Tensor Forward(IVideoUNet unet, Tensor sample, Tensor timestep, Tensor encoderHiddenStates,
        VideoUNetForwardOptions? options, int? videosPerCall)
    {
        long b = sample.shape[0];
        if (videosPerCall is int n && n < 1) throw new ArgumentException($"videos per UNet call must be at least 1 (got {n})");
        if (videosPerCall is not int k || k >= b) return unet.Forward(sample, timestep, encoderHiddenStates, options);
        using var scope = NewDisposeScope();
        var outputs = new List<Tensor>();
        bool perVideoT = timestep.dim() == 1 && timestep.shape[0] == b && b > 1;
        for (long start = 0; start < b; start += k)
        {
            long len = Math.Min(k, b - start);
            var t = perVideoT ? timestep.narrow(0, start, len) : timestep;
            outputs.Add(unet.Forward(sample.narrow(0, start, len), t, encoderHiddenStates.narrow(0, start, len), options?.ForVideos(start, len)));
        }
        return cat(outputs, 0).MoveToOuterDisposeScope();
    }
}
