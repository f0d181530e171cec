using SelfCascade.Cli;

namespace SelfCascade.Tests.Cli;

/// <summary>The first Ctrl+C/SIGTERM cancels and keeps the process; the next one lets it end at once.</summary>
public sealed class StopSignalsTests
{
    [Fact]
    public void TheFirstSignalCancelsTheNextOnesDoNot()
    {
        var err = new StringWriter();
        using var s = new StopSignals(err);
        Assert.False(s.Token.IsCancellationRequested);
        Assert.True(s.OnSignal());
        Assert.True(s.Token.IsCancellationRequested);
        Assert.False(s.OnSignal());
        Assert.False(s.OnSignal());
        Assert.Equal("stopping (signal again to stop at once)" + Environment.NewLine, err.ToString());
    }
}
