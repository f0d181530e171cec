using SelfCascade.Models.Unet;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Unet;

/// <summary>The feature hook, the encoder half, the time embedding and the self-attention logit scale.</summary>
public class UNetHookTests
{
    public UNetHookTests() => TorchSetup.Ensure();

    /// <summary>Adds a constant to one block's output.</summary>
    private sealed class AddingHook(UNetBlockKind kind, int index, double delta) : IUNetFeatureHook
    {
        public int Calls { get; private set; }
        public Tensor? OnBlockOutput(UNetBlockKind k, int i, Tensor hidden, Tensor emb)
        {
            Calls++;
            if (k != kind || i != index) return null;
            using var d = delta.ToScalar();
            return hidden.add(d);
        }
    }

    [Fact]
    public void HookSeesEveryBlockOnceWithTheTimeEmbedding()
    {
        using var unet = UNetCase.Model("unet_sdxl_style");
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var c = UNetCase.Read("unet_sdxl_style", 0);
        var seen = new List<(UNetBlockKind, int, long[])>();
        var emb = unet.TimeEmbedding(c.Timestep, 2, ScalarType.Float32, c.Added);
        var hook = new LambdaHook((k, i, h, e) =>
        {
            seen.Add((k, i, h.shape));
            Assert.Equal(0.0, (e - emb).abs().max().item<float>(), 6);
            return null;
        });
        unet.Forward(c.Sample, c.Timestep, c.Context, c.Added, new UNetForwardOptions { FeatureHook = hook });
        Assert.Equal([UNetBlockKind.Down, UNetBlockKind.Down, UNetBlockKind.Mid, UNetBlockKind.Up, UNetBlockKind.Up],
            seen.Select(s => s.Item1).ToArray());
        Assert.Equal([0, 1, 0, 0, 1], seen.Select(s => s.Item2).ToArray());
        Assert.Equal(new long[] { 2, 32, 8, 8 }, seen[0].Item3);
        Assert.Equal(new long[] { 2, 64, 8, 8 }, seen[1].Item3);
        Assert.Equal(new long[] { 2, 64, 8, 8 }, seen[2].Item3);
        Assert.Equal(new long[] { 2, 64, 16, 16 }, seen[3].Item3);
        Assert.Equal(new long[] { 2, 32, 16, 16 }, seen[4].Item3);
        Assert.Equal(new long[] { 2, 128 }, emb.shape);
    }

    [Fact]
    public void ReplacingADownBlockOutputFeedsTheNextBlock()
    {
        using var unet = UNetCase.Model("unet_sd15_style");
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var c = UNetCase.Read("unet_sd15_style", 0);
        var baseline = unet.Forward(c.Sample, c.Timestep, c.Context);

        // A zero change through the hook must give the identical output.
        var same = unet.Forward(c.Sample, c.Timestep, c.Context, null, new UNetForwardOptions { FeatureHook = new AddingHook(UNetBlockKind.Down, 0, 0.0) });
        Parity.AssertEqual(same, baseline, "hook adding zero");

        // Adding to down block 0's output changes the prediction; the encoder half with the same hook reports the
        // replaced tensor and its mid block sees the change. (Skips: SkipConnectionsKeepTheBlocksOwnOutputs.)
        var hook = new AddingHook(UNetBlockKind.Down, 0, 0.5);
        var changed = unet.Forward(c.Sample, c.Timestep, c.Context, null, new UNetForwardOptions { FeatureHook = hook });
        Assert.Equal(5, hook.Calls);
        Assert.True(Parity.MaxAbsDiff(changed, baseline) > 1e-3, "replacing down block 0's output did not change the prediction");

        var emb = unet.TimeEmbedding(c.Timestep, 2, ScalarType.Float32);
        using var plain = unet.ForwardEncoder(c.Sample, emb, c.Context);
        using var hooked = unet.ForwardEncoder(c.Sample, emb, c.Context, new UNetForwardOptions { FeatureHook = new AddingHook(UNetBlockKind.Down, 0, 0.5) });
        using var half = 0.5.ToScalar();
        Parity.AssertClose(hooked.Down[0], plain.Down[0].add(half), "encoder half reports the replacement");
        Assert.True(Parity.MaxAbsDiff(hooked.Mid, plain.Mid) > 1e-3, "the mid block did not see the replacement");
    }

    [Fact]
    public void SkipConnectionsKeepTheBlocksOwnOutputs()
    {
        // Replace the last down block's output (it feeds only the mid block) and put the mid block's baseline
        // output back: if the skip tensors had been replaced too, the up blocks would see the change.
        using var unet = UNetCase.Model("unet_sd15_style");
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var c = UNetCase.Read("unet_sd15_style", 2);
        using var rec = new RecordingFeatureHook();
        var baseline = unet.Forward(c.Sample, c.Timestep, c.Context, null, new UNetForwardOptions { FeatureHook = rec });
        var midBaseline = rec.Features["mid"];
        bool midChanged = false;
        var hook = new LambdaHook((k, i, h, e) =>
        {
            if (k == UNetBlockKind.Down && i == 1) return h + 1.0f;
            if (k == UNetBlockKind.Mid) { midChanged = Parity.MaxAbsDiff(h, midBaseline) > 1e-3; return midBaseline.clone(); }
            return null;
        });
        var output = unet.Forward(c.Sample, c.Timestep, c.Context, null, new UNetForwardOptions { FeatureHook = hook });
        Assert.True(midChanged, "the mid block did not see the replaced down-block output");
        Parity.AssertEqual(output, baseline, "output with only the main path replaced and restored");
    }

    [Fact]
    public void EncoderHalfMatchesTheRecordedFixtureBlocks()
    {
        foreach (var model in new[] { "unet_sd2_style", "unet_sdxl_style" })
        {
            using var unet = UNetCase.Model(model);
            using var io = Parity.Open("models", model, "io.safetensors");
            using var scope = NewDisposeScope();
            using var _ = inference_mode();
            var c = UNetCase.Read(model, 1);
            var emb = unet.TimeEmbedding(c.Timestep, c.Sample.shape[0], ScalarType.Float32, c.Added);
            using var f = unet.ForwardEncoder(c.Sample, emb, c.Context);
            Assert.Equal(unet.Config.NumBlocks, f.Down.Count);
            for (int k = 0; k < f.Down.Count; k++) Parity.AssertClose(f.Down[k], io.Read($"c1_feat_down{k}"), $"{model} encoder down{k}");
            Parity.AssertClose(f.Mid, io.Read("c1_feat_mid"), $"{model} encoder mid");
            // ForwardWithEmbedding with the same emb is Forward.
            Parity.AssertClose(unet.ForwardWithEmbedding(c.Sample, emb, c.Context), io.Read("c1_out"), $"{model} ForwardWithEmbedding");
        }
    }

    [Fact]
    public void SelfAttentionLogitScaleOfOneIsANoOpAndOtherValuesChangeTheOutput()
    {
        using var unet = UNetCase.Model("unet_sd2_style");
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var c = UNetCase.Read("unet_sd2_style", 0);
        var off = unet.Forward(c.Sample, c.Timestep, c.Context);
        var one = unet.Forward(c.Sample, c.Timestep, c.Context, null, new UNetForwardOptions { SelfAttentionLogitScale = 1.0 });
        var more = unet.Forward(c.Sample, c.Timestep, c.Context, null, new UNetForwardOptions { SelfAttentionLogitScale = 1.3 });
        Parity.AssertClose(one, off, "scale 1");
        Assert.True(Parity.MaxAbsDiff(more, off) > 1e-4, "a logit scale of 1.3 did not change the output");
    }

    private sealed class LambdaHook(Func<UNetBlockKind, int, Tensor, Tensor, Tensor?> f) : IUNetFeatureHook
    {
        public Tensor? OnBlockOutput(UNetBlockKind kind, int index, Tensor hidden, Tensor emb) => f(kind, index, hidden, emb);
    }
}
