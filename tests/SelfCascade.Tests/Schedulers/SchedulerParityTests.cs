using SelfCascade.Schedulers;
using SelfCascade.Tests.Support;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Schedulers;

/// <summary>schedulers/ fixtures: timesteps, sigmas, init_noise_sigma, add_noise and the sampling loop of every scheduler.</summary>
public class SchedulerParityTests
{
    public SchedulerParityTests() => TorchSetup.Ensure();

    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        foreach (var name in SchedulerFixtures.Names)
            foreach (var n in new[] { 10, 30, 50 }) data.Add(name, n);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TimestepsSigmasAndInitNoiseSigmaMatch(string name, int steps)
    {
        var run = SchedulerFixtures.Run(name, steps);
        using var s = SchedulerFixtures.Create(name);
        Assert.Equal(SchedulerFixtures.Entry(name)["class"]!.GetValue<string>(), s.ClassName);
        s.SetTimesteps(steps);
        var expected = run["timesteps"]!.AsArray().Select(v => v!.GetValue<double>()).ToArray();
        Assert.Equal(expected, s.Timesteps.ToArray());
        double ins = run["init_noise_sigma"]!.GetValue<double>();
        Assert.True(Math.Abs(s.InitNoiseSigma - ins) <= 1e-6 * Math.Abs(ins), $"init_noise_sigma {s.InitNoiseSigma} vs {ins}");
        if (run["sigmas"] is { } sigmasNode)
        {
            var sigmas = sigmasNode.AsArray().Select(v => v!.GetValue<double>()).ToArray();
            Assert.NotNull(s.Sigmas);
            Assert.Equal(sigmas.Length, s.Sigmas!.Count);
            for (int i = 0; i < sigmas.Length; i++)
                Assert.True(Math.Abs(s.Sigmas[i] - sigmas[i]) <= 1e-6 * Math.Abs(sigmas[i]), $"sigma[{i}] {s.Sigmas[i]} vs {sigmas[i]}");
        }
        else Assert.Null(s.Sigmas);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void AddNoiseMatches(string name, int steps)
    {
        using var s = SchedulerFixtures.Create(name);
        s.SetTimesteps(steps);
        double t = s.Timesteps[s.Timesteps.Count / 2];
        using var f = Parity.Open("schedulers", $"{name}.safetensors");
        var key = $"n{steps}_add_noise_t{(long)t}";
        Assert.Contains(key, f.Entries.Keys);
        using var x0 = SchedulerFixtures.Randn(1);
        using var noise = SchedulerFixtures.Randn(2);
        using var ours = s.AddNoise(x0, noise, t);
        using var reference = f.Read(key);
        Parity.AssertClose(ours, reference, $"{name} n{steps} add_noise t={t}");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void SamplingLoopMatches(string name, int steps)
    {
        using var s = SchedulerFixtures.Create(name);
        s.SetTimesteps(steps);
        var (scaled0, after0, final) = SchedulerFixtures.Sample(s, name);
        using var _1 = scaled0; using var _2 = after0; using var _3 = final;
        using var f = Parity.Open("schedulers", $"{name}.safetensors");
        using var rScaled = f.Read($"n{steps}_scaled_input0");
        using var rAfter = f.Read($"n{steps}_after_step0");
        using var rFinal = f.Read($"n{steps}_final");
        Parity.AssertClose(scaled0, rScaled, $"{name} n{steps} scaled_input0");
        Parity.AssertClose(after0, rAfter, $"{name} n{steps} after_step0");
        Parity.AssertClose(final, rFinal, $"{name} n{steps} final");
    }
}
