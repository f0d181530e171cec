using static TorchSharp.torch;

namespace SelfCascade.Training;

/// <summary>
/// Min-SNR-γ loss weighting (Hang et al., "Efficient Diffusion Training via Min-SNR Weighting Strategy", ICCV 2023),
/// as diffusers' training scripts apply it with <c>--snr_gamma</c> (examples/text_to_image/train_text_to_image.py and
/// <c>diffusers.training_utils.compute_snr</c>): SNR(t) = ᾱ_t / (1 - ᾱ_t); the per-sample MSE is weighted by
/// min(SNR, γ) / SNR for epsilon prediction and min(SNR, γ) / (SNR + 1) for v-prediction, so the many low-noise
/// timesteps, whose easy targets dominate an unweighted loss, stop crowding out the high-noise ones that decide a
/// sample's layout and its match to the prompt.
/// </summary>
public static class MinSnrWeighting
{
    /// <summary>SNR(t) = ᾱ_t / (1 - ᾱ_t) for each timestep (diffusers' compute_snr: (sqrt ᾱ / sqrt(1 - ᾱ))²).</summary>
    public static double Snr(IReadOnlyList<float> alphasCumprod, long t)
    {
        double a = alphasCumprod[(int)t];
        return a / (1.0 - a);
    }

    /// <summary>The weight of a sample at timestep <paramref name="t"/>.</summary>
    public static double Weight(IReadOnlyList<float> alphasCumprod, long t, double gamma, string predictionType)
    {
        if (!(gamma > 0)) throw new ArgumentOutOfRangeException(nameof(gamma), $"snr gamma {gamma} must be > 0");
        double snr = Snr(alphasCumprod, t);
        double clipped = Math.Min(snr, gamma);
        return predictionType switch
        {
            "epsilon" => clipped / snr,
            "v_prediction" => clipped / (snr + 1.0),
            _ => throw new NotSupportedException($"min-SNR weighting for prediction type '{predictionType}'"),
        };
    }

    /// <summary>mean_b(w_b · mean over the other dims of (pred - target)²): diffusers' weighted loss.</summary>
    public static Tensor WeightedMse(Tensor pred, Tensor target, IReadOnlyList<float> alphasCumprod, long[] timesteps,
        double gamma, string predictionType)
    {
        using var scope = NewDisposeScope();
        var w = tensor(timesteps.Select(t => (float)Weight(alphasCumprod, t, gamma, predictionType)).ToArray(), device: pred.device);
        var perSample = (pred.to(ScalarType.Float32) - target).square().flatten(1).mean([1L]);
        return (perSample * w).mean().MoveToOuterDisposeScope();
    }
}
