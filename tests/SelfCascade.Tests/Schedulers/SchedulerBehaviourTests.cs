using SelfCascade.IO;
using SelfCascade.Schedulers;
using SelfCascade.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace SelfCascade.Tests.Schedulers;

/// <summary>img2img timesteps, reset, memory, factory names and config validation.</summary>
public class SchedulerBehaviourTests
{
    public SchedulerBehaviourTests() => TorchSetup.Ensure();

    public static TheoryData<string> Names()
    {
        var data = new TheoryData<string>();
        foreach (var n in SchedulerFixtures.Names) data.Add(n);
        return data;
    }

    [Fact]
    public void Img2ImgStrength07With50LeadingStepsStartsAt681()
    {
        // docs/ARCHITECTURE.md §7: strength 0.7 ~ the paper's K = 700; first t = 681 with 50 leading-spaced steps.
        using var s = SchedulerFixtures.Create("ddim_sd");
        var (timesteps, start) = s.GetImg2ImgTimesteps(50, 0.7);
        Assert.Equal(15, start);
        Assert.Equal(35, timesteps.Count);
        Assert.Equal(681, timesteps[0]);
        Assert.Equal(1, timesteps[^1]);
    }

    [Fact]
    public void Img2ImgTimestepsMatchTheSdTinyPipelineFixture()
    {
        var readme = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Fixtures.ParityPath("pipelines", "sd_tiny", "README.json")))!;
        var expected = readme["stage"]!["timesteps"]!.AsArray().Select(v => v!.GetValue<double>()).ToArray();
        Assert.Equal([601, 501, 401, 301, 201, 101, 1], expected);
        using var s = SchedulerFixtures.Create("ddim_sd");
        var (timesteps, start) = s.GetImg2ImgTimesteps(10, 0.7);
        Assert.Equal(3, start);
        Assert.Equal(expected, timesteps.ToArray());
    }

    [Fact]
    public void Img2ImgSetsTheBeginIndexOfSigmaSchedulers()
    {
        // Euler with leading spacing: begin index 15 makes add_noise and the first step use sigma[15].
        using var s = SchedulerFixtures.Create("euler_sdxl");
        var (timesteps, start) = s.GetImg2ImgTimesteps(50, 0.7);
        Assert.Equal(681, timesteps[0]);
        using var x0 = SchedulerFixtures.Randn(1);
        using var noise = SchedulerFixtures.Randn(2);
        using var noisy = s.AddNoise(x0, noise, timesteps[0]);
        using var expected = x0 + noise * s.Sigmas![start];
        Parity.AssertClose(noisy, expected, "add_noise at the begin index");
        using var xin = s.ScaleModelInput(noisy, timesteps[0]);
        Assert.Equal(start, ((SigmaScheduler)s).StepIndex);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void SetTimestepsResetsAllRunState(string name)
    {
        using var s = SchedulerFixtures.Create(name);
        s.SetTimesteps(10);
        var (a0, a1, first) = SchedulerFixtures.Sample(s, name);
        a0.Dispose(); a1.Dispose();
        using var _ = first;
        s.SetTimesteps(10);
        var (b0, b1, second) = SchedulerFixtures.Sample(s, name);
        b0.Dispose(); b1.Dispose();
        using var __ = second;
        Parity.AssertEqual(second, first, $"{name}: second run after SetTimesteps");
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void HundredStepsKeepTheLiveTensorCountFlat(string name)
    {
        long Live() => DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        long before = Live();
        using (var probe = zeros(2)) Assert.Equal(before + 1, Live()); // the counter does see tensors
        Assert.Equal(before, Live());
        var s = SchedulerFixtures.Create(name);
        s.SetTimesteps(100);
        using var g = new Generator(3);
        var x = SchedulerFixtures.Randn(0);
        long start = Live();
        long afterWarmup = 0;
        for (int i = 0; i < s.Timesteps.Count; i++)
        {
            double t = s.Timesteps[i];
            using (var scope = NewDisposeScope())
            {
                var xin = s.ScaleModelInput(x, t);
                var eps = SchedulerFixtures.StandIn(xin, t);
                using var noise = s.AddNoise(x, eps, t);
                var next = s.Step(eps, t, x, g).DetachFromDisposeScope();
                x.Dispose();
                x = next;
            }
            if (i == 4) afterWarmup = Live();
        }
        long end = Live();
        Assert.Equal(afterWarmup, end);
        s.Dispose();
        Assert.Equal(start, Live()); // the solver history was freed
        x.Dispose();
    }

    [Fact]
    public void UnknownSchedulerNameListsTheValidNames()
    {
        var e = Assert.Throws<ArgumentException>(() => SchedulerFactory.Create("heun", SchedulerConfig.StableDiffusion()));
        foreach (var n in SchedulerFactory.Names) Assert.Contains(n, e.Message);
        Assert.Contains("heun", e.Message);
    }

    [Fact]
    public void UnknownClassNameIsReported()
    {
        var e = Assert.Throws<ArgumentException>(() => SchedulerFactory.Create(SchedulerConfig.StableDiffusion("KDPM2DiscreteScheduler")));
        Assert.Contains("KDPM2DiscreteScheduler", e.Message);
    }

    [Theory]
    [InlineData("ddim", "DDIMScheduler")]
    [InlineData("pndm", "PNDMScheduler")]
    [InlineData("euler", "EulerDiscreteScheduler")]
    [InlineData("euler-a", "EulerAncestralDiscreteScheduler")]
    [InlineData("dpm++2m", "DPMSolverMultistepScheduler")]
    [InlineData("dpm++2m-karras", "DPMSolverMultistepScheduler")]
    [InlineData("lms", "LMSDiscreteScheduler")]
    [InlineData("unipc", "UniPCMultistepScheduler")]
    [InlineData("ddpm", "DDPMScheduler")]
    public void CliNamesBuildTheirClassOverTheModelConfig(string name, string className)
    {
        var baseConfig = SchedulerConfig.StableDiffusion("PNDMScheduler");
        using var s = SchedulerFactory.Create(name, baseConfig);
        Assert.Equal(className, s.ClassName);
        Assert.Equal(name == "dpm++2m-karras", s.Config.UseKarrasSigmas);
        s.SetTimesteps(20);
        Assert.Equal(s.Config.NumTrainTimesteps, s.AlphasCumprod.Length);
    }

    [Fact]
    public void ConfigLoadsAScheduleConfigFileAndIgnoresUnknownKeys()
    {
        var path = Path.Combine(Path.GetTempPath(), $"sc_sched_{Guid.NewGuid():N}.json");
        File.WriteAllText(path, """
        { "_class_name": "EulerDiscreteScheduler", "_diffusers_version": "0.19.0", "beta_end": 0.012,
          "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": false, "interpolation_type": "linear",
          "num_train_timesteps": 1000, "prediction_type": "epsilon", "sample_max_value": 1.0, "set_alpha_to_one": false,
          "skip_prk_steps": true, "steps_offset": 1, "timestep_spacing": "leading", "trained_betas": null,
          "use_karras_sigmas": false, "something_new": [1, 2] }
        """);
        try
        {
            var c = SchedulerConfig.Load(path);
            Assert.Equal("EulerDiscreteScheduler", c.ClassName);
            Assert.Equal("leading", c.TimestepSpacing);
            Assert.Equal(1, c.StepsOffset);
            Assert.Null(c.TrainedBetas);
            using var s = SchedulerFactory.Create(c);
            s.SetTimesteps(10);
            Assert.Equal(901, s.Timesteps[0]);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void ImpossibleConfigValuesAreAllReported()
    {
        var json = """{ "_class_name": "DDIMScheduler", "beta_schedule": "sigmoid", "prediction_type": "noise", "timestep_spacing": "middle", "solver_order": 5, "thresholding": true }""";
        var e = Assert.Throws<ConfigException>(() => SchedulerConfig.FromJson(ConfigJson.Parse(json)));
        foreach (var key in new[] { "beta_schedule", "prediction_type", "timestep_spacing", "solver_order", "thresholding" })
            Assert.Contains(key, e.Message);
    }

    [Fact]
    public void StepBeforeSetTimestepsThrows()
    {
        using var s = SchedulerFixtures.Create("ddim_sd");
        using var x = SchedulerFixtures.Randn(0);
        Assert.Throws<InvalidOperationException>(() => s.Step(x, 1, x));
    }

    [Fact]
    public void TrainingTargetIsNoiseOrVelocity()
    {
        using var eps = SchedulerFixtures.Create("ddim_sd");
        using var vpred = SchedulerFixtures.Create("ddim_sd_vpred");
        using var x0 = SchedulerFixtures.Randn(1);
        using var noise = SchedulerFixtures.Randn(2);
        using var t = tensor(new long[] { 500 });
        using var target = eps.GetTrainingTarget(x0, noise, t);
        Parity.AssertEqual(target, noise, "epsilon target");
        using var v = vpred.GetTrainingTarget(x0, noise, t);
        float a = vpred.AlphasCumprod[500];
        using var expected = noise * MathF.Sqrt(a) - x0 * MathF.Sqrt(1 - a);
        Parity.AssertClose(v, expected, "v target");
        // add_noise for training equals the scheduler's add_noise at that timestep
        using var noisy = eps.AddTrainingNoise(x0, noise, t);
        using var reference = eps.AddNoise(x0, noise, 500);
        Parity.AssertClose(noisy, reference, "training add_noise");
    }
}
