using static TorchSharp.torch;

namespace SelfCascade.Models.Clip;

/// <summary>
/// What <see cref="ClipTextModel.Forward"/> returns (transformers <c>BaseModelOutputWithPooling</c> /
/// <c>CLIPTextModelOutput</c>). Owns its tensors: dispose it, or move the tensors you keep out first
/// (<see cref="Take"/>).
/// </summary>
public sealed class ClipTextOutput : IDisposable
{
    private readonly List<Tensor> _owned;

    internal ClipTextOutput(Tensor last, Tensor penultimate, Tensor pooled, Tensor? textEmbeds, IReadOnlyList<Tensor>? hiddenStates)
    {
        LastHiddenState = last;
        PenultimateHiddenState = penultimate;
        PooledOutput = pooled;
        TextEmbeds = textEmbeds;
        HiddenStates = hiddenStates;
        _owned = new List<Tensor> { last, penultimate, pooled };
        if (textEmbeds is not null) _owned.Add(textEmbeds);
        if (hiddenStates is not null) _owned.AddRange(hiddenStates);
    }

    /// <summary>(batch, seq, hidden): the last layer's output after <c>final_layer_norm</c> (<c>last_hidden_state</c>).</summary>
    public Tensor LastHiddenState { get; }

    /// <summary>
    /// (batch, seq, hidden): transformers' <c>hidden_states[-2]</c>, the input of the last layer, before any final
    /// layer norm (what SDXL and diffusers' <c>clip_skip</c> use). Always computed; it costs one tensor.
    /// </summary>
    public Tensor PenultimateHiddenState { get; }

    /// <summary>(batch, hidden): <see cref="LastHiddenState"/> at the EOS position (<c>pooler_output</c>).</summary>
    public Tensor PooledOutput { get; }

    /// <summary>(batch, projection_dim): <c>text_projection(pooler_output)</c>; null without the projection.</summary>
    public Tensor? TextEmbeds { get; }

    /// <summary>
    /// transformers' <c>hidden_states</c> (only when asked for): [0] the embeddings output, [i] layer i-1's output,
    /// num_hidden_layers + 1 entries, none with the final layer norm applied. Null unless requested.
    /// </summary>
    public IReadOnlyList<Tensor>? HiddenStates { get; }

    /// <summary>Detaches <paramref name="t"/> (one of this output's tensors) so that <see cref="Dispose"/> leaves it alive.</summary>
    public Tensor Take(Tensor t)
    {
        if (_owned.RemoveAll(x => ReferenceEquals(x, t)) == 0) throw new ArgumentException("not a tensor of this output (or already taken)", nameof(t));
        return t;
    }

    public void Dispose()
    {
        foreach (var t in _owned.Distinct(ReferenceEqualityComparer.Instance)) ((Tensor)t!).Dispose();
        _owned.Clear();
    }
}
