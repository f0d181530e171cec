using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Models.Clip;

/// <summary>
/// transformers <c>CLIPTextTransformer</c>: <c>embeddings</c>, causal <c>encoder</c>, <c>final_layer_norm</c>, and
/// the pooled (EOS-position) output. <see cref="ClipTextModel"/> registers these children either at the top level
/// (transformers 5.x <c>CLIPTextModel</c>) or under <c>text_model</c> (<c>CLIPTextModelWithProjection</c>).
/// </summary>
internal sealed class ClipTextTransformer : nn.Module
{
    private readonly ClipTextEmbeddings embeddings;
    private readonly ClipEncoder encoder;
    private readonly LayerNorm final_layer_norm;
    private readonly int _eosTokenId;

    // The EOS id of CLIP's BPE vocabulary; transformers' pooling rule tests for it literally (see PoolIndices).
    private const long ClipVocabEos = 49407;

    public ClipTextTransformer(ClipTextConfig config, Device? device, ScalarType? dtype) : base("CLIPTextTransformer")
    {
        embeddings = new ClipTextEmbeddings(config, device, dtype);
        encoder = new ClipEncoder(config, device, dtype);
        final_layer_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps, device: device, dtype: dtype);
        _eosTokenId = config.EosTokenId;
        RegisterComponents();
    }

    /// <summary>
    /// Runs the text transformer on (batch, seq) ids already on the model's device. All returned tensors are in the
    /// caller's dispose scope. <paramref name="hiddenStates"/>, when given, receives transformers'
    /// <c>hidden_states</c>: the embeddings output, then every layer's output (before the final layer norm).
    /// </summary>
    public (Tensor Last, Tensor Penultimate, Tensor Pooled) Run(Tensor inputIds, List<Tensor>? hiddenStates)
    {
        var h = embeddings.call(inputIds);
        hiddenStates?.Add(h);
        var (raw, penultimate) = encoder.Run(h, hiddenStates);
        var last = final_layer_norm.call(raw);
        if (hiddenStates is null && !ReferenceEquals(raw, penultimate)) raw.Dispose();
        if (hiddenStates is null && !ReferenceEquals(h, penultimate)) h.Dispose();
        var pooled = Pool(last, inputIds);
        return (last, penultimate, pooled);
    }

    /// <summary>The hidden state at each row's EOS position: (batch, seq, hidden) → (batch, hidden).</summary>
    private Tensor Pool(Tensor last, Tensor inputIds)
    {
        long b = last.shape[0], s = last.shape[1];
        var rows = PoolIndices(inputIds, _eosTokenId);
        for (int i = 0; i < rows.Length; i++) rows[i] += i * s;
        using var index = torch.tensor(rows, device: last.device);
        using var flat = last.reshape(b * s, last.shape[2]);
        return flat.index_select(0, index);
    }

    /// <summary>
    /// Each row's pooling position, as transformers' <c>CLIPTextTransformer.forward</c> chooses it: when every row's
    /// largest id is 49407 (CLIP's EOS, the highest id of its vocabulary; the rule kept for configs from before
    /// transformers PR #24773, whose <c>eos_token_id</c> was wrong), the first position of the row's largest id
    /// (<c>argmax</c>); otherwise the first position equal to <c>eos_token_id</c> (0 when absent, as argmax of an
    /// all-zero row). Computed on the CPU: the ids are tiny and argmax's tie rule is then explicit.
    /// </summary>
    internal static long[] PoolIndices(Tensor inputIds, long eosTokenId)
    {
        using var cpu = inputIds.to(ScalarType.Int64, torch.CPU).contiguous();
        long b = cpu.shape[0], s = cpu.shape[1];
        var ids = cpu.data<long>().ToArray();
        bool legacy = true;
        for (long r = 0; r < b && legacy; r++)
        {
            long max = long.MinValue;
            for (long j = 0; j < s; j++) max = Math.Max(max, ids[r * s + j]);
            legacy = max == ClipVocabEos;
        }
        var result = new long[b];
        for (long r = 0; r < b; r++)
        {
            long target = eosTokenId;
            if (legacy)
            {
                target = long.MinValue;
                for (long j = 0; j < s; j++) target = Math.Max(target, ids[r * s + j]);
            }
            long pos = 0;
            for (long j = 0; j < s; j++)
                if (ids[r * s + j] == target) { pos = j; break; }
            result[r] = pos;
        }
        return result;
    }
}
