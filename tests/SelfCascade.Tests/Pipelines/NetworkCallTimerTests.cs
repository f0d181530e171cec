using System.Diagnostics;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Support;

namespace SelfCascade.Tests.Pipelines;

/// <summary>
/// The pipeline's optional network-call timer (what the cascade benchmark's overhead figure is computed from): it
/// sees every text-encoder, UNet and VAE call, attributes UNet calls to their stage, stays off by default and does
/// not change the images.
/// </summary>
public sealed class NetworkCallTimerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-timer-").FullName;
    private readonly string _model;

    public NetworkCallTimerTests()
    {
        TorchSetup.Ensure();
        _model = TinyModelFolders.BuildSd(Path.Combine(_dir, "model"));
    }

    public void Dispose() => Directory.Delete(_dir, true);

    private static CascadeRequest Cascade(int images) => new()
    {
        Request = new GenerationRequest("a red circle") { Steps = 5, Seed = 2, Width = 64, Height = 64, NumImages = images },
        KeepStageImages = true,
    };

    [Fact]
    public void CountsEveryNetworkCallOfACascadeAndChangesNothing()
    {
        using var pipe = StableDiffusionPipeline.FromPretrained(_model);
        Assert.Null(pipe.CallTimer);
        using var plain = CascadeGenerator.Generate(pipe, Cascade(2));

        var totals = new NetworkCallTotals();
        pipe.CallTimer = totals;
        var wall = Stopwatch.StartNew();
        using var timed = CascadeGenerator.Generate(pipe, Cascade(2));
        var elapsed = wall.Elapsed;

        // 32 -> 64 px: stage 0 runs 5 steps, stage 1 int(5 * 0.7) = 3 (CFG is one batched call per step).
        Assert.Equal((5, 3), (totals.UnetInStage(0).Count, totals.UnetInStage(1).Count));
        Assert.Equal(8, totals.Count(NetworkCall.Unet));
        // Two final images and two kept stage-0 images: four decodes, one image each; one prompt encoding.
        Assert.Equal(4, totals.Count(NetworkCall.VaeDecode));
        Assert.Equal(1, totals.Count(NetworkCall.TextEncoder));
        Assert.Equal(0, totals.Count(NetworkCall.VaeEncode));
        Assert.Equal(totals.Total(NetworkCall.Unet), totals.UnetInStage(0).Total + totals.UnetInStage(1).Total);
        Assert.True(totals.Sum > TimeSpan.Zero && totals.Sum < elapsed, $"{totals.Sum} of {elapsed}");
        for (int i = 0; i < 2; i++) Assert.Equal(plain.Images[i].Pixels, timed.Images[i].Pixels);
    }

    [Fact]
    public void UpscaleRecordsItsEncodeAndBothStages()
    {
        using var pipe = StableDiffusionPipeline.FromPretrained(_model);
        var totals = new NetworkCallTotals();
        pipe.CallTimer = totals;
        var image = new RgbImage(32, 32);
        using var result = CascadeGenerator.Upscale(pipe, image, 4, new CascadeRequest
        {
            Request = new GenerationRequest("x") { Steps = 4 }, PivotStrength = 0.5,
        });
        Assert.Equal(1, totals.Count(NetworkCall.VaeEncode));
        Assert.Equal((0, 2, 2), (totals.UnetInStage(0).Count, totals.UnetInStage(1).Count, totals.UnetInStage(2).Count));
        Assert.Equal(1, totals.Count(NetworkCall.VaeDecode));
    }
}
