using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SelfCascade.Models.Clip;

/// <summary>transformers <c>CLIPMLP</c>: <c>fc2(act(fc1(x)))</c> with the configured activation.</summary>
internal sealed class ClipMlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear fc1;
    private readonly Linear fc2;
    private readonly string _act;
    // quick_gelu = x * sigmoid(1.702 x) (transformers QuickGELUActivation); kept as a Scalar to avoid a per-call leak.
    private readonly Scalar _quickGeluAlpha = 1.702;

    public ClipMlp(ClipTextConfig config, Device? device, ScalarType? dtype) : base("CLIPMLP")
    {
        fc1 = nn.Linear(config.HiddenSize, config.IntermediateSize, device: device, dtype: dtype);
        fc2 = nn.Linear(config.IntermediateSize, config.HiddenSize, device: device, dtype: dtype);
        _act = config.HiddenAct;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = fc1.call(x);
        h = _act switch
        {
            "quick_gelu" => h * torch.sigmoid(h * _quickGeluAlpha),
            "gelu" => nn.functional.gelu(h), // exact erf GELU (transformers GELUActivation)
            "gelu_pytorch_tanh" => nn.functional.gelu(h, GELU.Approximate.tanh),
            _ => throw new InvalidOperationException($"unsupported hidden_act '{_act}'"),
        };
        return fc2.call(h).MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _quickGeluAlpha.Dispose();
        base.Dispose(disposing);
    }
}
