using SelfCascade.Evaluation.PromptGrid;
using SelfCascade.Pipelines;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Evaluation;

/// <summary>
/// The prompt-sensitivity table (prompt-grid --sensitivity): x̂0 from ε and v outputs, one entry recomputed by hand,
/// and exact zeros when the text cannot reach the UNet (cross-attention outputs zeroed).
/// </summary>
public sealed class ConditioningSensitivityTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-condsens-").FullName;
    public ConditioningSensitivityTests() => TorchSetup.Ensure();
    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void PredictedX0InvertsTheForwardProcessForEachParameterisation()
    {
        using var scope = NewDisposeScope();
        using var g = new Generator(5);
        var x0 = rand([2, 3, 4, 4], generator: g) * 2 - 1;
        var eps = randn([2, 3, 4, 4], generator: g);
        const double a = 0.3;
        var xt = Math.Sqrt(a) * x0 + Math.Sqrt(1 - a) * eps;
        var v = Math.Sqrt(a) * eps - Math.Sqrt(1 - a) * x0;
        Parity.AssertClose(ConditioningSensitivity.PredictedX0(eps, xt, a, "epsilon"), x0, "from ε");
        Parity.AssertClose(ConditioningSensitivity.PredictedX0(v, xt, a, "v_prediction"), x0, "from v");
        Assert.True(Parity.Same(ConditioningSensitivity.PredictedX0(x0, xt, a, "sample"), x0));
        Assert.Throws<ArgumentException>(() => ConditioningSensitivity.PredictedX0(eps, xt, a, "flow"));
        Assert.Throws<ArgumentOutOfRangeException>(() => ConditioningSensitivity.PredictedX0(eps, xt, 0, "epsilon"));
    }

    [Fact]
    public void AnEntryIsTheMeanAbsoluteX0DifferenceOverTheDrawsAndZeroWithoutCrossAttention()
    {
        using var pipe = StableDiffusionPipeline.FromPretrained(TinyModelFolders.BuildSd(Path.Combine(_dir, "model")));
        string[] prompts = ["a red ball", "a blue cube"];
        var rows = ConditioningSensitivity.Measure(pipe, prompts, [800, 300], draws: 2, seed: 7);
        Assert.Equal([800, 300], rows.Select(r => r.Timestep));
        Assert.Equal(pipe.Scheduler.AlphasCumprod[800], rows[0].AlphaBar, 6);

        // "a blue cube" at t = 300, by hand: draws from seeds 7 and 8, x̂0 clamped, mean |difference| to the empty prompt's.
        using (var scope = NewDisposeScope())
        using (inference_mode())
        {
            var cube = pipe.Prompts.Encode("a blue cube", null, false, CPU, pipe.DType).Positive;
            var empty = pipe.Prompts.Encode("", null, false, CPU, pipe.DType).Positive;
            double a = pipe.Scheduler.AlphasCumprod[300], expected = 0;
            int side = pipe.NativeSize / pipe.VaeScaleFactor;
            foreach (ulong s in new ulong[] { 7, 8 })
            {
                var xt = randn([1, pipe.Unet.Config.InChannels, side, side], generator: new Generator(s));
                var t = tensor(new long[] { 300 });
                Tensor X0(Tensor states) => ConditioningSensitivity.PredictedX0(pipe.Unet.Forward(xt, t, states), xt, a,
                    pipe.Scheduler.Config.PredictionType).clamp(-1, 1);
                expected += (X0(cube) - X0(empty)).abs().mean().item<float>() / 2;
            }
            Assert.Equal(expected, rows[1].PerPrompt[1], 5);
        }
        Assert.All(rows, r => Assert.All(r.PerPrompt, v => Assert.True(v > 0)));
        Assert.Equal(rows[0].PerPrompt.Average(), rows[0].Mean, 12);

        // The text reaches the UNet only through cross-attention: with its output projections zeroed, every entry is 0.
        int zeroed = 0;
        using (no_grad())
            foreach (var (name, p) in pipe.Unet.named_parameters())
                if (name.Contains("attn2.to_out")) { p.zero_(); zeroed++; }
        Assert.True(zeroed > 0);
        var deaf = ConditioningSensitivity.Measure(pipe, prompts, [800, 300], draws: 2, seed: 7);
        Assert.All(deaf, r => Assert.All(r.PerPrompt, v => Assert.Equal(0.0, v)));

        var md = ConditioningSensitivity.Markdown(prompts, rows);
        Assert.StartsWith("| t | ᾱ_t | a red ball | a blue cube | mean |", md);
        Assert.Equal(4, md.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => ConditioningSensitivity.Measure(pipe, prompts, [1000]));
        Assert.Throws<ArgumentException>(() => ConditioningSensitivity.Measure(pipe, []));
    }
}
