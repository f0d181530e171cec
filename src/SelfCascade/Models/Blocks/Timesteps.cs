using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Models.Blocks;

/// <summary>
/// diffusers `Timesteps` / `get_timestep_embedding`: sinusoidal features of (B,) timesteps, computed in fp32 as
/// diffusers does: exponent = -ln(10000) * arange(half) / (half - freq_shift), args = t * exp(exponent),
/// [sin, cos] (or [cos, sin] with flip_sin_to_cos), zero-padded when the width is odd. No parameters.
/// </summary>
public sealed class Timesteps : nn.Module<Tensor, Tensor>
{
    private readonly long _dim;
    private readonly bool _flipSinToCos;
    private readonly double _freqShift;

    public Timesteps(long numChannels, bool flipSinToCos, double downscaleFreqShift) : base(nameof(Timesteps))
    {
        _dim = numChannels;
        _flipSinToCos = flipSinToCos;
        _freqShift = downscaleFreqShift;
        RegisterComponents();
    }

    public long NumChannels => _dim;

    /// <param name="input">(B,) timesteps of any numeric dtype.</param>
    /// <returns>(B, num_channels) float32.</returns>
    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        long half = _dim / 2;
        using var negLogMaxPeriod = (-Math.Log(10000.0)).ToScalar();
        using var denom = (half - _freqShift).ToScalar();
        var exponent = torch.arange(0, half, dtype: ScalarType.Float32, device: input.device).mul(negLogMaxPeriod).div(denom);
        var freqs = exponent.exp();
        var args = input.to_type(ScalarType.Float32).unsqueeze(1) * freqs.unsqueeze(0);
        var emb = torch.cat([args.sin(), args.cos()], -1);
        if (_flipSinToCos) emb = torch.cat([emb[.., (int)half..], emb[.., ..(int)half]], -1);
        if (_dim % 2 == 1) emb = nn.functional.pad(emb, [0, 1, 0, 0]);
        return emb.MoveToOuterDisposeScope();
    }
}
