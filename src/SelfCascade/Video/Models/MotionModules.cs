using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Video.Models;

/// <summary>diffusers `MotionModules`: the `motion_modules` list of one UNet block (one per resnet layer).</summary>
public sealed class MotionModules : nn.Module
{
    private readonly ModuleList<TransformerTemporalModel> motion_modules;

    public MotionModules(long channels, int layers, long heads, long normGroups, long maxSeqLength) : base(nameof(MotionModules))
    {
        motion_modules = nn.ModuleList(Enumerable.Range(0, layers)
            .Select(_ => new TransformerTemporalModel(channels, heads, normGroups, maxSeqLength)).ToArray());
        RegisterComponents();
    }

    public int Count => motion_modules.Count;
    public TransformerTemporalModel this[int i] => motion_modules[i];
}
