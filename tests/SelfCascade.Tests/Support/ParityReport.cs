using static TorchSharp.torch;

namespace SelfCascade.Tests.Support;

/// <summary>Collects every parity failure of a test (each names its tensor) and fails once listing all of them.</summary>
public sealed class ParityReport
{
    private readonly List<string> _failures = [];
    public int Checked { get; private set; }

    public void Close(Tensor ours, Tensor reference, string what)
    {
        Checked++;
        try { Parity.AssertClose(ours, reference, what); }
        catch (Xunit.Sdk.XunitException e) { _failures.Add(e.Message); }
    }

    public void Fail(string message) => _failures.Add(message);

    public void ThrowIfAny()
    {
        if (_failures.Count > 0)
            Assert.Fail($"{_failures.Count} of {Checked} tensors differ:\n" + string.Join("\n", _failures));
    }
}
