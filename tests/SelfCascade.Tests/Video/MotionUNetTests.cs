using SelfCascade.Models.Unet;
using SelfCascade.Tests.Support;
using SelfCascade.Video;
using SelfCascade.Video.Models;
using SelfCascade.Video.Pipelines;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Video;

/// <summary>
/// UNetMotionModel (image UNet + motion adapter) against diffusers' animatediff_tiny/io_unet_motion.safetensors, and
/// the structure: zero motion modules = the image UNet per frame; frames independent only when they are zero.
/// </summary>
public sealed class MotionUNetTests : IDisposable
{
    private readonly UNet2DConditionModel _unet;
    private readonly MotionAdapter _adapter;
    private readonly UNetMotionModel _model;

    public MotionUNetTests()
    {
        TorchSetup.Ensure();
        _unet = UNet2DConditionModel.FromPretrained(VideoFixtures.UnetDir);
        _adapter = MotionAdapter.FromPretrained(VideoFixtures.AdapterDir, normGroups: _unet.Config.NormNumGroups);
        _model = new UNetMotionModel(_unet, _adapter);
    }

    public void Dispose()
    {
        _adapter.Dispose();
        _unet.Dispose();
    }

    /// <summary>Keeps the motion modules' outputs the fixture records (first of down block 0, first of the mid block).</summary>
    private sealed class MotionRecorder : IUNetLayerHook, IDisposable
    {
        public Dictionary<string, Tensor> Outputs { get; } = new();
        public Tensor? OnLayerOutput(UNetBlockKind kind, int block, int layer, Tensor hidden)
        {
            if (layer == 0 && block == 0 && kind != UNetBlockKind.Up)
                Outputs[kind == UNetBlockKind.Down ? "motion_down0_0" : "motion_mid_0"] = hidden.detach().clone().DetachFromDisposeScope();
            return null;
        }
        public void Dispose() { foreach (var t in Outputs.Values) t.Dispose(); }
    }

    [Fact]
    public void ReproducesDiffusersOnEveryCaseAndBlock()
    {
        using var f = VideoFixtures.Open("animatediff_tiny", "io_unet_motion.safetensors");
        var report = new ParityReport();
        using var mode = inference_mode();
        for (int c = 0; c < 3; c++)
        {
            using var sample = f.Read($"c{c}_sample");
            using var t = f.Read($"c{c}_timestep");
            using var ctx = f.Read($"c{c}_encoder_hidden_states");
            using var blocks = new RecordingFeatureHook();
            using var motion = new MotionRecorder();
            var options = c == 1 ? new VideoUNetForwardOptions { FeatureHook = blocks, LayerHook = motion } : null;
            using var output = _model.Forward(sample, t, ctx, options);
            report.Close(output, f.Read($"c{c}_out"), $"c{c}_out");
            if (c != 1) continue;
            foreach (var (name, value) in blocks.Features) report.Close(value, f.Read($"c1_feat_{name}"), $"c1_feat_{name}");
            foreach (var (name, value) in motion.Outputs) report.Close(value, f.Read($"c1_feat_{name}"), $"c1_feat_{name}");
            Assert.Equal(5, blocks.Features.Count);
            Assert.Equal(2, motion.Outputs.Count);
        }
        report.ThrowIfAny();
    }

    private void ZeroMotionOutputs()
    {
        using var _ = no_grad();
        foreach (var m in _adapter.AllModules())
        {
            m.ProjOut.weight!.zero_();
            m.ProjOut.bias!.zero_();
        }
    }

    private static (Tensor Sample, Tensor Context) Inputs(long seed, long videos = 1, long frames = 6, long h = 12, long w = 16)
    {
        using var g = new Generator((ulong)seed);
        return (randn([videos, 4, frames, h, w], generator: g), randn([videos, 7, 32], generator: g));
    }

    [Fact]
    public void ZeroMotionModulesLeaveTheImageUNetPerFrame()
    {
        ZeroMotionOutputs();
        var (sample, ctx) = Inputs(3);
        using var _s = sample; using var _c = ctx;
        using var t = tensor(new long[] { 400 });
        using var mode = inference_mode();
        using var video = _model.Forward(sample, t, ctx);
        for (long fr = 0; fr < sample.shape[2]; fr++)
        {
            using var scope = NewDisposeScope();
            var frame = sample.select(2, fr);
            var image = _unet.Forward(frame, t, ctx);
            Parity.AssertClose(video.select(2, fr), image, $"frame {fr}");
        }
    }

    /// <summary>Changing frame 2 of the input changes the other frames' outputs only through the motion modules.</summary>
    private double OtherFramesChange()
    {
        var (sample, ctx) = Inputs(4);
        using var _s = sample; using var _c = ctx;
        using var t = tensor(new long[] { 700 });
        using var mode = inference_mode();
        using var before = _model.Forward(sample, t, ctx);
        using var changed = sample.clone();
        using (var noise = randn_like(changed.select(2, 2))) changed.select(2, 2).add_(noise);
        using var after = _model.Forward(changed, t, ctx);
        using var others = torch.cat([before.narrow(2, 0, 2), before.narrow(2, 3, 3)], 2);
        using var othersAfter = torch.cat([after.narrow(2, 0, 2), after.narrow(2, 3, 3)], 2);
        using var self = (before.select(2, 2) - after.select(2, 2)).abs().max();
        Assert.True(self.item<float>() > 1e-3, "frame 2 itself must change");
        return Parity.MaxAbsDiff(others, othersAfter);
    }

    [Fact]
    public void FramesAreIndependentExactlyWhenTheTemporalLayersAreZero()
    {
        Assert.True(OtherFramesChange() > 1e-3, "with trained (random) motion modules frames must interact");
        ZeroMotionOutputs();
        Assert.True(OtherFramesChange() < 1e-5, "zero motion modules must leave the other frames untouched");
    }

    [Fact]
    public void BatchChunkedForwardEqualsOneCall()
    {
        var (sample, ctx) = Inputs(5, videos: 3, frames: 4, h: 8, w: 8);
        using var _s = sample; using var _c = ctx;
        using var t = tensor(new long[] { 900, 500, 100 });
        using var mode = inference_mode();
        using var whole = VideoUNetChunking.Forward(_model, sample, t, ctx, null, null);
        using var chunked = VideoUNetChunking.Forward(_model, sample, t, ctx, null, 2);
        using var single = VideoUNetChunking.Forward(_model, sample, t, ctx, null, 1);
        Parity.AssertClose(chunked, whole, "2 videos per call");
        Parity.AssertClose(single, whole, "1 video per call");
        // The per-video timesteps travel with their videos: another order of t gives another result.
        using var swapped = tensor(new long[] { 100, 500, 900 });
        using var other = VideoUNetChunking.Forward(_model, sample, swapped, ctx, null, 1);
        Assert.True(Parity.MaxAbsDiff(other, whole) > 1e-3);
    }

    [Fact]
    public void RepeatedForwardsKeepTheLiveTensorCountFlat()
    {
        var (sample, ctx) = Inputs(6, videos: 2, frames: 3, h: 8, w: 8);
        using var _s = sample; using var _c = ctx;
        using var t = tensor(new long[] { 10 });
        using var mode = inference_mode();
        VideoUNetChunking.Forward(_model, sample, t, ctx, null, 1).Dispose();
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 2; i++)
        {
            VideoUNetChunking.Forward(_model, sample, t, ctx, null, 1).Dispose();
            _model.Forward(sample, t, ctx).Dispose();
        }
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Theory]
    [InlineData(0, "at least 1")]
    [InlineData(33, "at most 32")]
    public void FrameCountsOutsideTheTableAreOneClearError(int frames, string expected)
    {
        using var sample = zeros(new long[] { 1, 4, frames, 8, 8 });
        using var ctx = zeros(1, 7, 32);
        using var t = tensor(new long[] { 1 });
        var e = Assert.Throws<ArgumentException>(() => _model.Forward(sample, t, ctx));
        Assert.Contains(expected, e.Message);
        Assert.Contains("frames", e.Message);
    }
}
