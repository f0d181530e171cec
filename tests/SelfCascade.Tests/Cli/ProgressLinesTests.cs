using SelfCascade.Cli;

namespace SelfCascade.Tests.Cli;

/// <summary>Progress when stderr is not a terminal: a line per interval, a last line only after a long run.</summary>
public sealed class ProgressLinesTests
{
    [Fact]
    public void WritesALinePerIntervalAndAFinalLineOnlyWhenItWroteBefore()
    {
        var now = TimeSpan.Zero;
        var w = new StringWriter();
        var p = new CliConsole.ProgressLines<int>(w, step => (step / 100.0, $"step {step}/100"), TimeSpan.FromSeconds(60), () => now);
        for (int step = 1; step <= 100; step++)
        {
            now = TimeSpan.FromSeconds(step * 1.5); // 1.5 s a step: lines at 60 s (step 40) and 120 s (step 80)
            p.Report(step);
        }
        var lines = w.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["step 40/100 (40 %, 01:00 elapsed, eta 01:30)", "step 80/100 (80 %, 02:00 elapsed, eta 00:30)",
            "step 100/100 (100 %, 02:30 elapsed)"], lines);

        // A run shorter than the interval prints nothing, not even at the end.
        var quiet = new StringWriter();
        now = TimeSpan.Zero;
        var q = new CliConsole.ProgressLines<int>(quiet, step => (step / 10.0, $"step {step}"), TimeSpan.FromSeconds(60), () => now);
        for (int step = 1; step <= 10; step++) { now = TimeSpan.FromSeconds(step); q.Report(step); }
        Assert.Equal("", quiet.ToString());
    }
}
