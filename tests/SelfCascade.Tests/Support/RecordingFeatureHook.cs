using SelfCascade.Models.Unet;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Support;

/// <summary>Keeps a copy of the hidden state leaving every UNet block, named as the fixtures name them (down0, mid, up1).</summary>
public sealed class RecordingFeatureHook : IUNetFeatureHook, IDisposable
{
    public Dictionary<string, Tensor> Features { get; } = new();

    public static string Name(UNetBlockKind kind, int index) => kind switch
    {
        UNetBlockKind.Down => $"down{index}",
        UNetBlockKind.Up => $"up{index}",
        _ => "mid",
    };

    public Tensor? OnBlockOutput(UNetBlockKind kind, int index, Tensor hidden, Tensor emb)
    {
        Features[Name(kind, index)] = hidden.detach().clone().DetachFromDisposeScope();
        return null;
    }

    public void Dispose()
    {
        foreach (var t in Features.Values) t.Dispose();
        Features.Clear();
    }
}
