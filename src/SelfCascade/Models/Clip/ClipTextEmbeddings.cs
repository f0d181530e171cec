using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Models.Clip;

/// <summary>
/// transformers <c>CLIPTextEmbeddings</c>: token embedding plus learned absolute position embedding. transformers
/// keeps a non-persistent <c>position_ids</c> buffer (0..n-1); taking the first n rows of the position table is the
/// same lookup, so no buffer exists here (older checkpoints' <c>position_ids</c> key is ignorable).
/// </summary>
internal sealed class ClipTextEmbeddings : nn.Module<Tensor, Tensor>
{
    private readonly ClipEmbeddingTable token_embedding;
    private readonly ClipEmbeddingTable position_embedding;

    public ClipTextEmbeddings(ClipTextConfig config, Device? device, ScalarType? dtype) : base("CLIPTextEmbeddings")
    {
        token_embedding = new ClipEmbeddingTable(config.VocabSize, config.HiddenSize, device, dtype);
        position_embedding = new ClipEmbeddingTable(config.MaxPositionEmbeddings, config.HiddenSize, device, dtype);
        RegisterComponents();
    }

    /// <param name="inputIds">(batch, seq) token ids.</param>
    public override Tensor forward(Tensor inputIds)
    {
        long seq = inputIds.shape[^1];
        long max = position_embedding.Weight.shape[0];
        if (seq > max)
            throw new ArgumentException($"sequence length {seq} exceeds max_position_embeddings {max}", nameof(inputIds));
        using var scope = NewDisposeScope();
        var tokens = token_embedding.call(inputIds);
        var positions = position_embedding.Weight.narrow(0, 0, seq).to(tokens.device); // a no-op unless sequential offload keeps the table on the CPU
        return (tokens + positions).MoveToOuterDisposeScope();
    }
}
