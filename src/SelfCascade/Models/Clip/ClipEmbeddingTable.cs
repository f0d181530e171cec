using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Models.Clip;

/// <summary>
/// A lookup table with one parameter, <c>weight</c> (num_embeddings, dim): the state dict of
/// <c>torch.nn.Embedding</c>, rows gathered exactly as its forward does. TorchSharp 0.107's native-backed
/// <c>nn.Embedding</c> keeps a CPU-sized allocation alive even when asked for <c>device: META</c> (measured:
/// +245 MiB for 49408x1280), so the weight is created here directly on the requested device.
/// </summary>
internal sealed class ClipEmbeddingTable : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;

    public ClipEmbeddingTable(long count, long dim, Device? device, ScalarType? dtype) : base("Embedding")
    {
        using (torch.no_grad())
        {
            var w = torch.empty([count, dim], dtype: dtype, device: device);
            // transformers' CLIP init (normal, std 0.02 x initializer_factor 1); loaded weights replace it.
            if (!w.is_meta) nn.init.normal_(w, 0.0, 0.02);
            weight = new Parameter(w);
        }
        RegisterComponents();
    }

    public Parameter Weight => weight;

    /// <param name="ids">Integer ids of any shape; returns (...ids shape, dim).</param>
    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        using var flat = ids.reshape(-1);
        var rows = weight.index_select(0, flat);
        return rows.view([.. ids.shape, weight.shape[1]]).MoveToOuterDisposeScope();
    }
}
