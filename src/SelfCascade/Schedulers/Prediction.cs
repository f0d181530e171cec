using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Schedulers;

/// <summary>Conversions between what the UNet predicts and the clean sample / noise, for the alphas_cumprod schedulers.</summary>
internal static class Prediction
{
    /// <summary>
    /// DDIMScheduler.step: epsilon: x0 = (x - sqrt(1-a) eps) / sqrt(a); sample: eps = (x - sqrt(a) x0) / sqrt(1-a);
    /// v_prediction: x0 = sqrt(a) x - sqrt(1-a) v, eps = sqrt(a) v + sqrt(1-a) x. Coefficients in float32 as diffusers' 0-d tensors.
    /// </summary>
    public static (Tensor sample0, Tensor epsilon) ToSampleAndEpsilon(string predictionType, Tensor modelOutput, Tensor sample, float alphaProd)
    {
        float sa = MathF.Sqrt(alphaProd), sb = MathF.Sqrt(1f - alphaProd);
        switch (predictionType)
        {
            case "epsilon":
            {
                using var scaled = Mul(modelOutput, sb);
                using var diff = sample.sub(scaled);
                return (Div(diff, sa), modelOutput.alias());
            }
            case "sample":
            {
                using var scaled = Mul(modelOutput, sa);
                using var diff = sample.sub(scaled);
                return (modelOutput.alias(), Div(diff, sb));
            }
            case "v_prediction":
            {
                using var ax = Mul(sample, sa);
                using var bv = Mul(modelOutput, sb);
                using var av = Mul(modelOutput, sa);
                using var bx = Mul(sample, sb);
                return (ax.sub(bv), av.add(bx));
            }
            default: throw new ArgumentException($"prediction_type '{predictionType}' is not supported");
        }
    }

    /// <summary>DDPM/DDIM/PNDM add_noise: sqrt(abar) x0 + sqrt(1 - abar) noise (float32 coefficients).</summary>
    public static Tensor AddNoiseAlphaBar(Tensor original, Tensor noise, float alphaBar)
    {
        using var a = Mul(original, MathF.Sqrt(alphaBar));
        using var b = Mul(noise, MathF.Sqrt(1f - alphaBar));
        return a.add(b);
    }

    public static Tensor Mul(Tensor t, double c)
    {
        using var s = c.ToScalar();
        return t.mul(s);
    }

    public static Tensor Div(Tensor t, double c)
    {
        using var s = c.ToScalar();
        return t.div(s);
    }
}
