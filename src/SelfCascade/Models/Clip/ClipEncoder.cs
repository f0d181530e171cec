using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Models.Clip;

/// <summary>transformers <c>CLIPEncoder</c>: the stack <c>layers.{i}</c>.</summary>
internal sealed class ClipEncoder : nn.Module
{
    private readonly ModuleList<ClipEncoderLayer> layers;

    public ClipEncoder(ClipTextConfig config, Device? device, ScalarType? dtype) : base("CLIPEncoder")
    {
        layers = new ModuleList<ClipEncoderLayer>(
            Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new ClipEncoderLayer(config, device, dtype)).ToArray());
        RegisterComponents();
    }

    public int Count => layers.Count;

    /// <summary>
    /// Runs every layer on <paramref name="h"/> (not consumed). Returns the last layer's output and the input of the
    /// last layer (transformers' <c>hidden_states[-2]</c>); with <paramref name="all"/> non-null, it receives every
    /// layer's output as well (the caller owns them). Outputs live in the caller's dispose scope.
    /// </summary>
    public (Tensor Last, Tensor Penultimate) Run(Tensor h, List<Tensor>? all)
    {
        Tensor current = h;
        Tensor penultimate = h;
        for (int i = 0; i < layers.Count; i++)
        {
            var next = layers[i].call(current);
            if (i == layers.Count - 1) penultimate = current;
            // Without `all`, drop each hidden state as soon as it is neither the input nor needed later.
            else if (all is null && !ReferenceEquals(current, h)) current.Dispose();
            all?.Add(next);
            current = next;
        }
        return (current, penultimate);
    }
}
