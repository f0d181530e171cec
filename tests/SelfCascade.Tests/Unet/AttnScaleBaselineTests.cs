using System.Text.RegularExpressions;
using SelfCascade.Models.Blocks;
using SelfCascade.Models.Unet;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Unet;

/// <summary>
/// The attn-scale baseline (attention-entropy scaling; diffusers has no counterpart). Its source, the released
/// Self-Cascade code (branch stable-diffusion-xl, source_override/ldm/attention.py, CrossAttention.forward), does
/// for self-attention only:
/// <code>
/// test_train_ratio = (gen_h * gen_w) / 512 ** 2
/// test_tn = q.shape[1]; train_tn = test_tn / test_train_ratio
/// sf = math.log(test_tn, train_tn) ** 0.5;  sim = einsum(q, k) * sf * dim_head ** -0.5;  softmax(sim) @ v
/// </code>
/// so every UNet level gets the factor of its own token count. These tests check the formula on numbers worked out
/// by hand, a tiny attention module against a hand-written softmax(QKᵀ·s/√d)V from its raw weights, and that the UNet
/// gives each level its own factor (against the same UNet with each attn1.to_q scaled by that level's factor).
/// </summary>
public class AttnScaleBaselineTests
{
    public AttnScaleBaselineTests() => TorchSetup.Ensure();

    [Fact]
    public void ScaleFactorIsTheReleasedCodesLogOfTestTokensInBaseTrainTokens()
    {
        // SD 2.1-base (native 512, VAE factor 8) at 1024x1024: ratio 4. Level 0 has 128² = 2^14 test tokens and
        // 64² = 2^12 training tokens: sqrt(log_{2^12} 2^14) = sqrt(14/12). Level 1: sqrt(12/10); level 2: sqrt(10/8).
        double ratio = CascadeGenerator.AttentionPixelRatio(512, 1024, 1024);
        Assert.Equal(4.0, ratio);
        Assert.Equal(Math.Sqrt(14.0 / 12.0), AttentionOptions.EntropyScale(128 * 128, ratio), 12);
        Assert.Equal(Math.Sqrt(12.0 / 10.0), AttentionOptions.EntropyScale(64 * 64, ratio), 12);
        Assert.Equal(Math.Sqrt(10.0 / 8.0), AttentionOptions.EntropyScale(32 * 32, ratio), 12);
        // SDXL (native 1024) at 2048x1024: ratio 2; its first attention level (down_blocks.1) has 64x128 = 2^13 tokens
        // at that size and 2^12 at 1024²: sqrt(13/12).
        Assert.Equal(2.0, CascadeGenerator.AttentionPixelRatio(1024, 2048, 1024));
        Assert.Equal(Math.Sqrt(13.0 / 12.0), AttentionOptions.EntropyScale(64 * 128, 2.0), 12);
        // The native size leaves attention as it is; a smaller one sharpens less than 1; no base for <= 1 training token.
        Assert.Equal(1.0, AttentionOptions.EntropyScale(4096, 1.0), 12);
        Assert.Equal(Math.Sqrt(10.0 / 12.0), AttentionOptions.EntropyScale(32 * 32, 0.25), 12);
        Assert.Equal(1.0, AttentionOptions.EntropyScale(4, 4.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => AttentionOptions.EntropyScale(64, 0));
    }

    /// <summary>softmax(Q Kᵀ · s / √d) V with Q, K, V, the heads and the output projection taken from the module's raw
    /// weights, in float64.</summary>
    private static Tensor HandWrittenAttention(Dictionary<string, Tensor> w, Tensor x, long heads, double s)
    {
        var x64 = x.to_type(ScalarType.Float64);
        Tensor P(string name) => w[name].to_type(ScalarType.Float64);
        long b = x.shape[0], n = x.shape[1], inner = w["to_q.weight"].shape[0], d = inner / heads;
        Tensor Heads(Tensor t) => t.reshape(b, n, heads, d).permute(0, 2, 1, 3); // (b, h, n, d)
        var q = Heads(matmul(x64, P("to_q.weight").t()));
        var k = Heads(matmul(x64, P("to_k.weight").t()));
        var v = Heads(matmul(x64, P("to_v.weight").t()));
        var logits = matmul(q, k.transpose(-1, -2)) * (s / Math.Sqrt(d));
        var probs = logits.exp() / logits.exp().sum(-1, keepdim: true); // the max is small here: no overflow
        var o = matmul(probs, v).permute(0, 2, 1, 3).reshape(b, n, inner);
        return matmul(o, P("to_out.0.weight").t()) + P("to_out.0.bias");
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(1.3)]
    [InlineData(0.7)]
    public void ScaledSelfAttentionEqualsAHandWrittenSoftmax(double s)
    {
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var attn = new Attention(new AttentionSpec(24, 3, 8));
        var g = new Generator(11);
        foreach (var (name, p) in attn.named_parameters())
            p.copy_(randn(p.shape, generator: g) * 0.3);
        var w = attn.named_parameters().ToDictionary(e => e.name, e => e.parameter.detach());
        var x = randn([2, 10, 24], generator: g);
        var ours = attn.Forward(x, null, s);
        var expected = HandWrittenAttention(w, x, 3, s);
        Parity.AssertClose(ours, expected, $"attention with logit scale {s}", 1e-5);
        if (s != 1.0)
        {
            // The scale really acts on the logits: the unscaled attention is far from the scaled one.
            var plain = HandWrittenAttention(w, x, 3, 1.0);
            Assert.True(Parity.MaxAbsDiff(ours, plain) > 1e-3, $"scale {s} left the output unchanged");
        }
    }

    [Fact]
    public void TransformerBlockScalesSelfAttentionByItsOwnTokenCount()
    {
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var block = new BasicTransformerBlock(24, 3, 8, 16, false);
        var g = new Generator(12);
        foreach (var (name, p) in block.named_parameters()) p.copy_(randn(p.shape, generator: g) * 0.3);
        var x = randn([1, 20, 24], generator: g);
        var ctx = randn([1, 5, 16], generator: g);
        const double ratio = 2.5;
        var ours = block.Forward(x, ctx, new AttentionOptions { SelfAttentionEntropyRatio = ratio });
        // The same block with a fixed factor sqrt(log 20 / log(20 / 2.5)) = sqrt(log 20 / log 8), worked out here.
        var fixedScale = block.Forward(x, ctx, new AttentionOptions { SelfAttentionLogitScale = Math.Sqrt(Math.Log(20) / Math.Log(8)) });
        Parity.AssertClose(ours, fixedScale, "entropy ratio 2.5 on 20 tokens", 1e-6);
        var plain = block.Forward(x, ctx, AttentionOptions.Default);
        Assert.True(Parity.MaxAbsDiff(ours, plain) > 1e-3);
    }

    /// <summary>
    /// The UNet with the baseline on equals the plain UNet whose every attn1.to_q weight (no bias in transformer blocks)
    /// is multiplied by the factor of its level's token count, worked out here from the latent size: scaling q scales
    /// each logit of that layer. A single factor for all levels (or the wrong level's) fails this.
    /// </summary>
    [Theory]
    [InlineData(0)] // 16x16 latent: levels of 256, 64, 16 tokens
    [InlineData(1)] // 12x20 latent: 240, 60, 15 tokens (non-square, odd sizes at the deepest level)
    public void UNetGivesEveryLevelTheFactorOfItsOwnTokenCount(int caseIndex)
    {
        const double ratio = 4.0;
        using var unet = UNetCase.Model("unet_sd2_style");
        using var scaledUnet = UNetCase.Model("unet_sd2_style");
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var c = UNetCase.Read("unet_sd2_style", caseIndex);
        long h = c.Sample.shape[2], w = c.Sample.shape[3];
        int levels = unet.Config.BlockOutChannels.Length;
        long Tokens(int level) => (long)(Math.Ceiling(h / Math.Pow(2, level)) * Math.Ceiling(w / Math.Pow(2, level)));
        var seenLevels = new HashSet<int>();
        foreach (var (name, p) in scaledUnet.named_parameters())
        {
            if (!name.EndsWith(".attn1.to_q.weight")) continue;
            int level = Regex.Match(name, @"^down_blocks\.(\d+)\.") is { Success: true } d ? int.Parse(d.Groups[1].Value)
                : Regex.Match(name, @"^up_blocks\.(\d+)\.") is { Success: true } u ? levels - 1 - int.Parse(u.Groups[1].Value)
                : name.StartsWith("mid_block.") ? levels - 1
                : throw new InvalidOperationException(name);
            seenLevels.Add(level);
            double n = Tokens(level), factor = Math.Sqrt(Math.Log(n) / Math.Log(n / ratio));
            using var f = factor.ToScalar();
            p.mul_(f);
        }
        Assert.Equal([0, 1, 2], seenLevels.Order()); // attention at levels 0 and 1 and in the mid block
        var ours = unet.Forward(c.Sample, c.Timestep, c.Context, null, new UNetForwardOptions { SelfAttentionEntropyRatio = ratio });
        var expected = scaledUnet.Forward(c.Sample, c.Timestep, c.Context);
        Parity.AssertClose(ours, expected, $"attn-scale UNet, case {caseIndex}");
        var plain = unet.Forward(c.Sample, c.Timestep, c.Context);
        Assert.True(Parity.MaxAbsDiff(ours, plain) > 1e-3, "the baseline left the UNet unchanged");
    }
}
