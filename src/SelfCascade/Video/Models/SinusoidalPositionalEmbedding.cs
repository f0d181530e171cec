using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Video.Models;

/// <summary>
/// diffusers `SinusoidalPositionalEmbedding`: adds the fixed table `pe` (1, max_seq_length, dim) — sin on even,
/// cos on odd channels, frequencies exp(-2i·ln(10000)/dim) — to a (N, seq, dim) input. `pe` is a state-dict buffer
/// (diffusers ≥ 0.2x writes it into adapter files); files without it keep the table computed here.
/// </summary>
public sealed class SinusoidalPositionalEmbedding : nn.Module<Tensor, Tensor>
{
    public long MaxSeqLength { get; }

    public SinusoidalPositionalEmbedding(long dim, long maxSeqLength) : base(nameof(SinusoidalPositionalEmbedding))
    {
        MaxSeqLength = maxSeqLength;
        var device = torch.get_default_device();
        var dtype = torch.get_default_dtype();
        Tensor pe;
        using (var scope = torch.NewDisposeScope())
        {
            // The reference's float32 arithmetic, on the CPU (the meta device has no values to compute).
            var position = torch.arange(maxSeqLength, dtype: ScalarType.Int64, device: torch.CPU).unsqueeze(1);
            var div = torch.exp(torch.arange(0, dim, 2, dtype: ScalarType.Int64, device: torch.CPU).to_type(ScalarType.Float32)
                .mul(-Math.Log(10000.0) / dim));
            var angles = position.to_type(ScalarType.Float32) * div;
            // pe[0, :, 0::2] = sin, pe[0, :, 1::2] = cos: interleaving the two is the same table.
            var table = torch.stack([angles.sin(), angles.cos()], -1).reshape(1, maxSeqLength, -1).narrow(2, 0, dim);
            pe = table.to(dtype).to(device).MoveToOuterDisposeScope();
        }
        register_buffer("pe", pe);
    }

    public override Tensor forward(Tensor x)
    {
        long seq = x.shape[1];
        if (seq > MaxSeqLength)
            throw new ArgumentException($"{seq} positions, but the sinusoidal table has {MaxSeqLength} (motion_max_seq_length)");
        using var scope = torch.NewDisposeScope();
        var pe = get_buffer("pe")!;
        return (x + pe.narrow(1, 0, seq).to_type(x.dtype)).MoveToOuterDisposeScope();
    }
}
