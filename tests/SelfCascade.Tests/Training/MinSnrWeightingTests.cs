using System.Text.Json;
using SelfCascade.Schedulers;
using SelfCascade.Tests.Support;
using SelfCascade.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Training;

/// <summary>
/// Min-SNR-γ weighting against diffusers 0.28.2 (compute_snr and train_text_to_image.py's weighting;
/// tests/reference/min-snr/make_min_snr.py), and wired into base-model training: γ far above every SNR leaves the
/// loss unweighted, a small γ lowers it.
/// </summary>
public sealed class MinSnrWeightingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sc-minsnr-").FullName;

    public MinSnrWeightingTests() => TorchSetup.Ensure();

    public void Dispose() => Directory.Delete(_dir, true);

    private static JsonElement Reference() => JsonDocument.Parse(File.ReadAllText(
        Path.Combine(Fixtures.RepoRoot, "tests", "reference", "min-snr", "min_snr.json"))).RootElement;

    private static float[] AlphasCumprod(string schedule) => SchedulerFactory.Create(new SchedulerConfig
    {
        ClassName = "DDIMScheduler", NumTrainTimesteps = 1000, BetaSchedule = schedule,
        BetaStart = schedule == "linear" ? 0.0001 : 0.00085, BetaEnd = schedule == "linear" ? 0.02 : 0.012,
    }).AlphasCumprod;

    private static void Near(double expected, double actual, string what)
    {
        double tol = 1e-4 * Math.Max(1, Math.Abs(expected));
        Assert.True(Math.Abs(expected - actual) <= tol, $"{what}: expected {expected}, got {actual}");
    }

    [Theory]
    [InlineData("linear")]
    [InlineData("scaled_linear")]
    public void SnrAndWeightsMatchDiffusers(string schedule)
    {
        var r = Reference().GetProperty(schedule);
        var ac = AlphasCumprod(schedule);
        var t = r.GetProperty("timesteps").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var snr = r.GetProperty("snr").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        for (int i = 0; i < t.Length; i++) Near(snr[i], MinSnrWeighting.Snr(ac, t[i]), $"snr t={t[i]}");
        foreach (var prediction in new[] { "epsilon", "v_prediction" })
            foreach (var gamma in new[] { 1.0, 5.0 })
            {
                var w = r.GetProperty($"{prediction}_{gamma:0.0}").EnumerateArray().Select(e => e.GetDouble()).ToArray();
                for (int i = 0; i < t.Length; i++)
                    Near(w[i], MinSnrWeighting.Weight(ac, t[i], gamma, prediction), $"{prediction} γ={gamma} t={t[i]}");
            }

        var l = r.GetProperty("loss");
        using var pred = tensor(l.GetProperty("pred").EnumerateArray().Select(e => e.GetSingle()).ToArray()).reshape(3, 2, 2, 2);
        using var target = tensor(l.GetProperty("target").EnumerateArray().Select(e => e.GetSingle()).ToArray()).reshape(3, 2, 2, 2);
        var tt = l.GetProperty("timesteps").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        using var loss = MinSnrWeighting.WeightedMse(pred, target, ac, tt, l.GetProperty("gamma").GetDouble(), "epsilon");
        Near(l.GetProperty("value").GetDouble(), loss.item<float>(), "weighted loss");
    }

    [Fact]
    public void RejectsANonPositiveGammaAndUnknownPredictionTypes()
    {
        var ac = AlphasCumprod("linear");
        Assert.Throws<ArgumentOutOfRangeException>(() => MinSnrWeighting.Weight(ac, 10, 0, "epsilon"));
        Assert.Throws<NotSupportedException>(() => MinSnrWeighting.Weight(ac, 10, 5, "sample"));
        var options = new BaseModelOptions { TokenizerDir = "x", SnrGamma = -1 };
        Assert.Contains(options.Validate(), p => p.Contains("snr gamma"));
    }

    [Fact]
    public void TrainingUsesTheWeighting()
    {
        var data = Path.Combine(_dir, "data");
        SyntheticImages.Make(data, 16, withBadFiles: false);
        var preset = SyntheticImages.MicroPreset(_dir);
        double FirstLoss(string name, double gamma)
        {
            var model = new BaseModelOptions
            {
                Preset = preset, Size = 16, TokenizerDir = Fixtures.ParityPath("tokenizer", "pad_eos"), PreviewEvery = 0, SnrGamma = gamma,
            };
            var loop = new TrainingOptions { OutputDir = Path.Combine(_dir, name), Steps = 1, BatchSize = 4, Seed = 3, CheckpointEvery = 1 };
            return BaseModelTraining.Run(data, loop, model).Losses[0].Loss;
        }
        int threads = torch.get_num_threads();
        torch.set_num_threads(1);
        try
        {
            double plain = FirstLoss("plain", 0), huge = FirstLoss("huge", 1e12), small = FirstLoss("small", 0.001);
            // min(SNR, 1e12) / SNR = 1 for every timestep of the schedule (max SNR ≈ 1e4): the plain MSE.
            Assert.True(Math.Abs(plain - huge) <= 1e-6 * Math.Max(1, plain), $"plain {plain} vs γ=1e12 {huge}");
            // Every weight is <= 1, and < 1 where SNR > γ: with γ = 0.001 that is every t below ~850 of this schedule,
            // so a batch of the same four samples gets a smaller loss (the same seed draws the same noise and t).
            Assert.True(small < plain, $"γ=0.001 {small} should be below plain {plain}");
        }
        finally { torch.set_num_threads(threads); }
    }
}
